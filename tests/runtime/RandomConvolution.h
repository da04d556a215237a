// Random valid convolution configurations drawn from a seed, shared by the
// sweeps of rdna1::conv (ConvolutionSweepTest) and of the native convolution
// (NativeConvolutionTest). A configuration's seed reproduces it.
#pragma once

#include "HostConvolution.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace rdna1::testing {

using IntList = std::vector<int64_t>;

inline IntList concat(IntList head, const IntList &tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

struct ConvolutionConfig {
  uint64_t seed = 0;
  int64_t dims = 2;
  bool transposed = false;
  int64_t groups = 1, batch = 1, inChannels = 1, outChannels = 1;
  IntList size, kernel, stride, padding, dilation, outputPadding;
  bool bias = false;
  c10::ScalarType dtype = at::kFloat;

  ConvolutionArgs args() const {
    return {stride, padding, dilation, transposed, outputPadding, groups};
  }

  IntList inputShape() const { return concat({batch, inChannels}, size); }

  IntList weightShape() const {
    return concat(transposed ? IntList{inChannels, outChannels / groups}
                             : IntList{outChannels, inChannels / groups},
                  kernel);
  }

  std::string describe() const {
    std::ostringstream out;
    auto list = [&out](const char *name, const IntList &v) {
      out << " " << name << "=" << c10::IntArrayRef(v);
    };
    out << "seed=" << seed << " dims=" << dims << (transposed ? " transposed" : "")
        << " groups=" << groups << " batch=" << batch << " in=" << inChannels
        << " out=" << outChannels;
    list("size", size);
    list("kernel", kernel);
    list("stride", stride);
    list("padding", padding);
    list("dilation", dilation);
    list("output_padding", outputPadding);
    out << (bias ? " bias" : " no-bias") << " dtype=" << dtype;
    return out.str();
  }
};

// Output extent of one spatial dimension, as ATen computes it.
inline int64_t outputExtent(const ConvolutionConfig &c, size_t i) {
  const int64_t span = c.dilation[i] * (c.kernel[i] - 1);
  if (c.transposed)
    return (c.size[i] - 1) * c.stride[i] - 2 * c.padding[i] + span + c.outputPadding[i] + 1;
  return (c.size[i] + 2 * c.padding[i] - span - 1) / c.stride[i] + 1;
}

inline bool isValid(const ConvolutionConfig &c) {
  for (size_t i = 0; i < c.size.size(); ++i) {
    const int64_t span = c.dilation[i] * (c.kernel[i] - 1);
    if (outputExtent(c, i) < 1 || (!c.transposed && c.size[i] + 2 * c.padding[i] < span + 1))
      return false;
  }
  return true;
}

// A random valid configuration drawn from `seed` (1-3 d, a third transposed,
// up to `maxGroups` groups, a quarter depthwise); with `drawDtype`, also one of
// float32, float64, bfloat16 and float16.
inline ConvolutionConfig drawConfig(uint64_t seed, int64_t maxGroups, bool drawDtype) {
  std::mt19937_64 rng(seed);
  auto pick = [&rng](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (;;) {
    ConvolutionConfig c;
    c.seed = seed;
    c.dims = pick(1, 3);
    c.transposed = pick(0, 2) == 0;
    c.groups = pick(1, maxGroups);
    const bool depthwise = pick(0, 3) == 0;
    c.inChannels = c.groups * (depthwise ? 1 : pick(1, 3));
    c.outChannels = c.groups * pick(1, 3);
    c.batch = pick(1, 2);
    c.bias = pick(0, 1) == 1;
    if (drawDtype) {
      static const c10::ScalarType kTypes[] = {at::kFloat, at::kDouble, at::kBFloat16, at::kHalf};
      c.dtype = kTypes[pick(0, 3)];
    }
    const int64_t maxSize = c.dims == 3 ? 5 : 9;
    for (int64_t i = 0; i < c.dims; ++i) {
      c.size.push_back(pick(1, maxSize));
      c.kernel.push_back(pick(1, 3));
      c.stride.push_back(pick(1, 3));
      c.dilation.push_back(pick(1, 2));
      c.padding.push_back(pick(0, 2));
      const int64_t limit = std::max(c.stride.back(), c.dilation.back());
      c.outputPadding.push_back(c.transposed ? pick(0, limit - 1) : 0);
    }
    if (isValid(c))
      return c;
    seed = rng(); // try again from a seed derived from this one
  }
}

} // namespace rdna1::testing
