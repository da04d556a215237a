// Property-based sweep: random convolution configurations (1-3 d, transposed or
// not, groups, strides, dilations, paddings, output paddings, bias, dtypes),
// forward and every gradient of rdna1::conv against ATen's convolution.
// Each configuration derives from one seed, printed on failure, so any failure
// reproduces with RDNA1_SWEEP_SEED=<seed> RDNA1_SWEEP_COUNT=1.
#include "RandomConvolution.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <cstdlib>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using SweepConfig = rdna1::testing::ConvolutionConfig;
using rdna1::testing::outputExtent;

SweepConfig drawConfig(uint64_t seed) {
  return rdna1::testing::drawConfig(seed, /*maxGroups=*/3, /*drawDtype=*/true);
}

at::Tensor rdnaConv(const at::Tensor &input, const at::Tensor &weight,
                    const c10::optional<at::Tensor> &bias, const SweepConfig &c) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("rdna1::conv", "")
          .typed<at::Tensor(const at::Tensor &, const at::Tensor &,
                            const c10::optional<at::Tensor> &, at::IntArrayRef, at::IntArrayRef,
                            at::IntArrayRef, bool, at::IntArrayRef, int64_t)>();
  return op.call(input, weight, bias, c.stride, c.padding, c.dilation, c.transposed,
                 c.outputPadding, c.groups);
}

double tolerance(c10::ScalarType dtype) {
  switch (dtype) {
  case at::kDouble:
    return 1e-10;
  case at::kFloat:
    return 1e-4;
  case at::kHalf:
    return 2e-2;
  default:
    return 6e-2; // bfloat16: 8 bits of mantissa
  }
}

struct Result {
  at::Tensor output, gradInput, gradWeight, gradBias;
};

// Output and gradients of a random-weighted sum of the output, computed in
// `computeType` from inputs already rounded to the config's dtype.
template <typename Conv> Result run(const SweepConfig &c, c10::ScalarType computeType, Conv conv) {
  at::manual_seed(c.seed);
  std::vector<int64_t> inputShape{c.batch, c.inChannels};
  std::vector<int64_t> weightShape =
      c.transposed ? std::vector<int64_t>{c.inChannels, c.outChannels / c.groups}
                   : std::vector<int64_t>{c.outChannels, c.inChannels / c.groups};
  inputShape.insert(inputShape.end(), c.size.begin(), c.size.end());
  weightShape.insert(weightShape.end(), c.kernel.begin(), c.kernel.end());
  const auto rounded = [&](at::Tensor t) {
    return t.to(c.dtype).to(computeType).requires_grad_(true);
  };
  at::Tensor input = rounded(at::randn(inputShape, at::kDouble));
  at::Tensor weight = rounded(at::randn(weightShape, at::kDouble));
  at::Tensor bias = rounded(at::randn({c.outChannels}, at::kDouble));
  const at::Tensor out =
      conv(input, weight, c.bias ? c10::optional<at::Tensor>(bias) : c10::nullopt);
  // The loss in float64, so reduced-precision CPU kernels for it are not needed.
  const at::Tensor loadings = at::randn(out.sizes(), at::kDouble).to(c.dtype).to(at::kDouble);
  (out.to(at::kDouble) * loadings).sum().backward();
  return {out.detach(), input.grad(), weight.grad(), c.bias ? bias.grad() : at::Tensor()};
}

::testing::AssertionResult close(const char *what, const at::Tensor &got, const at::Tensor &want,
                                 double tol) {
  if (!got.defined() && !want.defined())
    return ::testing::AssertionSuccess();
  if (got.defined() != want.defined() || got.sizes() != want.sizes())
    return ::testing::AssertionFailure() << what << ": shapes differ";
  const at::Tensor a = got.to(at::kDouble), b = want.to(at::kDouble);
  const double scale = std::max(1.0, b.abs().max().item<double>());
  const double diff = (a - b).abs().max().item<double>();
  if (diff <= tol * scale)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": max abs diff " << diff << " > " << tol << " * " << scale;
}

int64_t envOr(const char *name, int64_t fallback) {
  const char *value = std::getenv(name);
  return value ? std::atoll(value) : fallback;
}

TEST(ConvolutionSweep, RandomConfigsMatchAtenForwardAndEveryGradient) {
  const int64_t count = envOr("RDNA1_SWEEP_COUNT", 2000);
  const uint64_t firstSeed = static_cast<uint64_t>(envOr("RDNA1_SWEEP_SEED", 20261124));
  int64_t failures = 0;
  for (int64_t i = 0; i < count && failures < 5; ++i) {
    const SweepConfig c = drawConfig(firstSeed + static_cast<uint64_t>(i));
    // Reduced precision: ours computes in float32 from the rounded inputs, so the
    // reference does the same; the result is then rounded to the dtype.
    const c10::ScalarType reference = c.dtype == at::kDouble ? at::kDouble : at::kFloat;
    const Result want = run(c, reference, [&](auto &x, auto &w, const auto &b) {
      return at::convolution(x, w, b, c.stride, c.padding, c.dilation, c.transposed,
                             c.outputPadding, c.groups);
    });
    const Result got =
        run(c, c.dtype, [&](auto &x, auto &w, const auto &b) { return rdnaConv(x, w, b, c); });
    const double tol = tolerance(c.dtype);
    for (const auto &check : {close("output", got.output, want.output, tol),
                              close("grad_input", got.gradInput, want.gradInput, tol),
                              close("grad_weight", got.gradWeight, want.gradWeight, tol),
                              close("grad_bias", got.gradBias, want.gradBias, tol)}) {
      if (!check) {
        ADD_FAILURE() << check.message() << "\n  config: " << c.describe()
                      << "\n  rerun: RDNA1_SWEEP_SEED=" << c.seed << " RDNA1_SWEEP_COUNT=1";
        ++failures;
      }
    }
    EXPECT_EQ(got.output.scalar_type(), c.dtype) << c.describe();
  }
}

// The sweep draws every kind of configuration it claims to.
TEST(ConvolutionSweep, DrawsAllDimensionsModesAndDtypes) {
  std::set<std::string> seen;
  for (uint64_t seed = 0; seed < 500; ++seed) {
    const SweepConfig c = drawConfig(seed);
    seen.insert(std::to_string(c.dims) + (c.transposed ? "t" : "n"));
    seen.insert(std::string("dtype ") + c10::toString(c.dtype));
    EXPECT_GE(outputExtent(c, 0), 1) << c.describe();
  }
  for (const char *want : {"1n", "1t", "2n", "2t", "3n", "3t", "dtype Float", "dtype Double",
                           "dtype BFloat16", "dtype Half"})
    EXPECT_TRUE(seen.count(want)) << want;
}

} // namespace
