// rdna1::nativeConvolution against ATen's convolution: forward and every
// gradient over a seeded sweep of random configurations, double backward,
// reduced precision, channels-last, unbatched and empty batches; and a record
// of every op that forward and backward run, which must hold no convolution
// (the ops that reach cuDNN/MIOpen).
// A failing configuration reproduces with RDNA1_NATIVE_SEED=<seed> RDNA1_NATIVE_COUNT=1.
#include "NativeConvolution.h"
#include "RandomConvolution.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <c10/util/StringUtil.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

using rdna1::testing::IntList;
using Config = rdna1::testing::ConvolutionConfig;

// A random valid configuration drawn from `seed`; a quarter are depthwise
// (one input channel per group), some with a channel multiplier.
Config drawConfig(uint64_t seed) {
  return rdna1::testing::drawConfig(seed, /*maxGroups=*/4, /*drawDtype=*/false);
}

// A configuration given by hand; `hyper` is {stride, padding, dilation, output padding}.
Config fixedConfig(int64_t dims, bool transposed, int64_t groups, int64_t inChannels,
                   int64_t outChannels, int64_t kernel, std::array<int64_t, 4> hyper) {
  Config c;
  c.seed = 7;
  c.dims = dims;
  c.transposed = transposed;
  c.groups = groups;
  c.batch = 2;
  c.inChannels = inChannels;
  c.outChannels = outChannels;
  c.bias = true;
  const IntList sizes{7, 6, 5};
  for (int64_t i = 0; i < dims; ++i) {
    c.size.push_back(sizes[i]);
    c.kernel.push_back(kernel);
    c.stride.push_back(hyper[0]);
    c.padding.push_back(hyper[1]);
    c.dilation.push_back(hyper[2]);
    c.outputPadding.push_back(hyper[3]);
  }
  return c;
}

// One of every formulation: pointwise (strided, grouped, transposed), im2col
// over a batch folded into the channels, depthwise with a
// multiplier, depthwise without (its own backward; strided and dilated, and
// padded past the kernel), col2im (with an output padding of the stride or
// more), transposed blocks that tile (kernel = stride, grouped too), 3-d
// patches, 3-d spread-and-pad, 1-d through 2-d.
std::vector<Config> coverageConfigs() {
  return {
      fixedConfig(2, false, 1, 4, 6, 1, {1, 0, 1, 0}),
      fixedConfig(2, false, 2, 4, 6, 1, {2, 0, 1, 0}),
      fixedConfig(2, true, 2, 4, 6, 1, {1, 0, 1, 0}),
      fixedConfig(2, false, 1, 3, 5, 3, {2, 1, 1, 0}),
      fixedConfig(2, false, 3, 6, 9, 3, {1, 2, 2, 0}),
      fixedConfig(2, false, 4, 4, 8, 3, {1, 1, 1, 0}),
      fixedConfig(2, true, 1, 3, 5, 3, {2, 1, 1, 1}),
      fixedConfig(2, true, 2, 4, 6, 2, {1, 1, 2, 1}),
      fixedConfig(1, false, 2, 4, 4, 3, {2, 1, 2, 0}),
      fixedConfig(1, true, 4, 4, 4, 3, {3, 2, 1, 2}),
      fixedConfig(3, false, 2, 4, 6, 2, {2, 1, 2, 0}),
      fixedConfig(3, false, 1, 3, 4, 1, {2, 0, 1, 0}),
      fixedConfig(3, true, 2, 4, 2, 2, {2, 1, 1, 1}),
      fixedConfig(3, true, 1, 2, 3, 3, {1, 2, 2, 1}),
      fixedConfig(2, false, 4, 4, 4, 3, {2, 1, 2, 0}),
      fixedConfig(2, false, 3, 3, 3, 3, {1, 3, 1, 0}),
      fixedConfig(2, true, 1, 4, 6, 2, {2, 0, 1, 0}),
      fixedConfig(2, true, 2, 4, 6, 3, {3, 0, 1, 0}),
  };
}

int64_t envOr(const char *name, int64_t fallback) {
  const char *value = std::getenv(name);
  return value ? std::atoll(value) : fallback;
}

// ---- Operands and convolutions ---------------------------------------------

struct Operands {
  at::Tensor input, weight, bias; // bias undefined when the config has none

  std::vector<at::Tensor> leaves() const {
    return bias.defined() ? std::vector<at::Tensor>{input, weight, bias}
                          : std::vector<at::Tensor>{input, weight};
  }
};

// Leaves drawn from the config's seed in float64 and rounded to `dtype`.
Operands makeOperands(const Config &c, at::ScalarType dtype) {
  at::manual_seed(c.seed);
  const auto leaf = [dtype](const at::Tensor &t) { return t.to(dtype).requires_grad_(true); };
  Operands ops{leaf(at::randn(c.inputShape(), at::kDouble)),
               leaf(at::randn(c.weightShape(), at::kDouble)), at::Tensor()};
  if (c.bias)
    ops.bias = leaf(at::randn({c.outChannels}, at::kDouble));
  return ops;
}

// The same values in another dtype and/or memory format, as fresh leaves.
Operands convert(const Operands &ops, at::ScalarType dtype,
                 c10::MemoryFormat format = at::MemoryFormat::Contiguous) {
  const auto leaf = [dtype](const at::Tensor &t, c10::MemoryFormat f) {
    return t.detach().to(dtype).contiguous(f).requires_grad_(true);
  };
  return {leaf(ops.input, format), leaf(ops.weight, at::MemoryFormat::Contiguous),
          ops.bias.defined() ? leaf(ops.bias, at::MemoryFormat::Contiguous) : at::Tensor()};
}

c10::MemoryFormat channelsLastFormat(const Config &c) {
  return c.dims == 2 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::ChannelsLast3d;
}

using Conv = std::function<at::Tensor(const Config &, const Operands &)>;

at::Tensor nativeConv(const Config &c, const Operands &ops) {
  return rdna1::nativeConvolution(ops.input, ops.weight, c10::optional<at::Tensor>(ops.bias),
                                  c.args());
}

at::Tensor atenConv(const Config &c, const Operands &ops) {
  return at::convolution(ops.input, ops.weight, c10::optional<at::Tensor>(ops.bias), c.stride,
                         c.padding, c.dilation, c.transposed, c.outputPadding, c.groups);
}

// Fixed random loadings of the loss, representable in `dtype`.
at::Tensor loadings(at::IntArrayRef sizes, at::ScalarType dtype) {
  at::manual_seed(20240611);
  return at::randn(sizes, at::kDouble).to(dtype).to(at::kDouble);
}

struct Result {
  at::Tensor output;
  std::vector<at::Tensor> grads; // of the leaves, in order
};

// Output, and gradients of sum(output * loadings) computed in float64.
Result forwardAndGradients(const Conv &conv, const Config &c, const Operands &ops) {
  const at::Tensor out = conv(c, ops);
  const at::Tensor loss = (out.to(at::kDouble) * loadings(out.sizes(), out.scalar_type())).sum();
  return {out.detach(), torch::autograd::grad({loss}, ops.leaves())};
}

// Gradients of a gradient penalty: |d loss / d input|^2 + |d loss / d weight|^2,
// with a loss quadratic in the output so that every operand enters.
std::vector<at::Tensor> doubleBackward(const Conv &conv, const Config &c, const Operands &ops) {
  const at::Tensor out = conv(c, ops);
  const at::Tensor loss = (out * out * loadings(out.sizes(), out.scalar_type())).sum();
  const auto first = torch::autograd::grad({loss}, {ops.input, ops.weight}, {}, true, true);
  const at::Tensor penalty = first[0].pow(2).sum() + first[1].pow(2).sum();
  return torch::autograd::grad({penalty}, ops.leaves(), {}, c10::nullopt, false, true);
}

// |got - want| <= tol * max(1, max |want|), elementwise; both undefined is fine.
::testing::AssertionResult close(const std::string &what, const at::Tensor &got,
                                 const at::Tensor &want, double tol) {
  if (!got.defined() && !want.defined())
    return ::testing::AssertionSuccess();
  if (got.defined() != want.defined())
    return ::testing::AssertionFailure() << what << ": only one is defined";
  if (got.sizes() != want.sizes())
    return ::testing::AssertionFailure()
           << what << ": sizes " << got.sizes() << ", ATen's " << want.sizes();
  if (want.numel() == 0)
    return ::testing::AssertionSuccess();
  const at::Tensor a = got.detach().to(at::kDouble), b = want.detach().to(at::kDouble);
  const double scale = std::max(1.0, b.abs().max().item<double>());
  const double diff = (a - b).abs().max().item<double>();
  if (diff <= tol * scale)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": max abs diff " << diff << " > " << tol << " * " << scale;
}

// Output and gradients match; returns whether they did, reporting failures.
bool expectSame(const Result &got, const Result &want, double tol, const Config &c) {
  std::vector<::testing::AssertionResult> checks{close("output", got.output, want.output, tol)};
  static const char *kNames[] = {"grad_input", "grad_weight", "grad_bias"};
  for (size_t i = 0; i < want.grads.size(); ++i)
    checks.push_back(close(kNames[i], got.grads[i], want.grads[i], tol));
  bool ok = true;
  for (const auto &check : checks) {
    if (!check) {
      ADD_FAILURE() << check.message() << "\n  config: " << c.describe()
                    << "\n  rerun: RDNA1_NATIVE_SEED=" << c.seed << " RDNA1_NATIVE_COUNT=1";
      ok = false;
    }
  }
  return ok;
}

// ---- 1. Forward and every gradient -----------------------------------------

// Half of the configurations in float64, half in float32.
TEST(NativeConvolution, RandomConfigsMatchAtenForwardAndEveryGradient) {
  const int64_t count = envOr("RDNA1_NATIVE_COUNT", 1200);
  const uint64_t firstSeed = static_cast<uint64_t>(envOr("RDNA1_NATIVE_SEED", 20260203));
  int64_t failures = 0;
  for (int64_t i = 0; i < count && failures < 5; ++i) {
    const Config c = drawConfig(firstSeed + static_cast<uint64_t>(i));
    const bool exact = c.seed % 2 == 0;
    const Operands ops = makeOperands(c, exact ? at::kDouble : at::kFloat);
    const Result want = forwardAndGradients(atenConv, c, ops);
    const Result got = forwardAndGradients(nativeConv, c, ops);
    failures += expectSame(got, want, exact ? 1e-10 : 1e-4, c) ? 0 : 1;
  }
}

// The sweep draws every kind of configuration it claims to.
TEST(NativeConvolution, SweepDrawsAllDimensionsModesAndGroupings) {
  std::set<std::string> seen;
  for (uint64_t seed = 20260203; seed < 20260203 + 1200; ++seed) { // the sweep's default seeds
    const Config c = drawConfig(seed);
    const bool depthwise = c.groups > 1 && c.inChannels == c.groups;
    seen.insert(std::to_string(c.dims) + (c.transposed ? "t" : "n") + (depthwise ? "d" : ""));
    bool paddingPastStride = false;
    for (int64_t i = 0; i < c.dims; ++i)
      paddingPastStride = paddingPastStride || c.outputPadding[i] >= c.stride[i];
    if (paddingPastStride)
      seen.insert("output padding >= stride");
    bool tiles = c.transposed && c.dims <= 2;
    bool pointwise = true;
    for (int64_t i = 0; i < c.dims; ++i) {
      tiles = tiles && c.kernel[i] == c.stride[i] && c.padding[i] == 0 && c.dilation[i] == 1 &&
              c.outputPadding[i] == 0;
      pointwise = pointwise && c.kernel[i] == 1;
    }
    if (tiles && !pointwise)
      seen.insert("transposed blocks that tile");
    if (!c.transposed && c.dims == 2 && c.batch > 1 && !depthwise)
      seen.insert("2-d patches of a batch");
    bool strideOne = true, paddingWithinKernel = true;
    for (int64_t i = 0; i < c.dims; ++i) {
      strideOne = strideOne && c.stride[i] == 1;
      paddingWithinKernel =
          paddingWithinKernel && c.padding[i] <= c.dilation[i] * (c.kernel[i] - 1);
    }
    if (!c.transposed && c.dims <= 2 && !depthwise && !pointwise)
      seen.insert(strideOne && paddingWithinKernel ? "2-d input gradient by convolution"
                                                   : "2-d input gradient by col2im");
    bool noOutputPadding = true;
    for (int64_t i = 0; i < c.dims; ++i)
      noOutputPadding = noOutputPadding && c.outputPadding[i] == 0;
    if (c.transposed && c.dims <= 2 && !pointwise && strideOne && paddingWithinKernel)
      seen.insert(noOutputPadding ? "2-d transposed as a convolution"
                                  : "2-d transposed, stride 1, output padding");
  }
  for (const char *want :
       {"1n", "1t", "2n", "2t", "3n", "3t", "1nd", "2nd", "3nd", "2td", "output padding >= stride",
        "transposed blocks that tile", "2-d patches of a batch",
        "2-d input gradient by convolution", "2-d input gradient by col2im",
        "2-d transposed as a convolution", "2-d transposed, stride 1, output padding"})
    EXPECT_TRUE(seen.count(want)) << want;
}

TEST(NativeConvolution, EmptyBatchMatchesAten) {
  for (uint64_t seed = 0; seed < 60; ++seed) {
    Config c = drawConfig(seed);
    c.batch = 0;
    const Operands ops = makeOperands(c, at::kDouble);
    expectSame(forwardAndGradients(nativeConv, c, ops), forwardAndGradients(atenConv, c, ops),
               1e-10, c);
  }
}

// Unbatched input (one dim fewer than the weight) gives the batched result
// without its batch dim.
TEST(NativeConvolution, UnbatchedInputMatchesAtenOnABatchOfOne) {
  for (Config c : coverageConfigs()) {
    c.batch = 1;
    const Operands batched = makeOperands(c, at::kDouble);
    Operands unbatched = convert(batched, at::kDouble);
    unbatched.input = unbatched.input.detach().squeeze(0).requires_grad_(true);
    const Result want = forwardAndGradients(atenConv, c, batched);
    Result got = forwardAndGradients(nativeConv, c, unbatched);
    EXPECT_EQ(got.output.dim(), c.dims + 1) << c.describe();
    got.output = got.output.unsqueeze(0);
    got.grads[0] = got.grads[0].unsqueeze(0);
    expectSame(got, want, 1e-10, c);
  }
}

// Half and bfloat16 against float32 ATen on the same rounded values, at the
// precision of the dtype; results keep the dtype.
TEST(NativeConvolution, ReducedPrecisionMatchesFloatReference) {
  for (const auto &[dtype, tol] : {std::pair{at::kHalf, 2e-2}, std::pair{at::kBFloat16, 6e-2}}) {
    for (const Config &c : coverageConfigs()) {
      const Operands ops = makeOperands(c, dtype);
      const Result got = forwardAndGradients(nativeConv, c, ops);
      const Result want = forwardAndGradients(atenConv, c, convert(ops, at::kFloat));
      expectSame(got, want, tol, c);
      EXPECT_EQ(got.output.scalar_type(), dtype) << c.describe();
      for (const at::Tensor &grad : got.grads)
        EXPECT_EQ(grad.scalar_type(), dtype) << c.describe();
    }
  }
}

// A channels-last input (or weight) gives a channels-last output, as ATen's
// cuDNN, MIOpen and oneDNN convolutions do, with the same values.
TEST(NativeConvolution, ChannelsLastGivesChannelsLastOutput) {
  for (const Config &c : coverageConfigs()) {
    if (c.dims == 1)
      continue;
    const auto format = channelsLastFormat(c);
    const Operands ops = makeOperands(c, at::kDouble);
    const Operands last = convert(ops, at::kDouble, format);
    const Result got = forwardAndGradients(nativeConv, c, last);
    EXPECT_TRUE(got.output.is_contiguous(format)) << c.describe();
    expectSame(got, forwardAndGradients(atenConv, c, ops), 1e-10, c);

    Operands lastWeight = convert(ops, at::kDouble);
    lastWeight.weight = lastWeight.weight.detach().contiguous(format).requires_grad_(true);
    // A weight with one channel or a kernel of ones is in both formats: ATen picks contiguous.
    if (lastWeight.weight.suggest_memory_format() == format)
      EXPECT_TRUE(nativeConv(c, lastWeight).is_contiguous(format)) << c.describe();
  }
}

TEST(NativeConvolution, ContiguousInputGivesContiguousOutput) {
  for (const Config &c : coverageConfigs())
    EXPECT_TRUE(nativeConv(c, makeOperands(c, at::kFloat)).is_contiguous()) << c.describe();
}

// ---- 2. Double backward -----------------------------------------------------

TEST(NativeConvolution, DoubleBackwardMatchesAten) {
  std::vector<Config> configs = coverageConfigs();
  for (uint64_t seed = 1000; seed < 1150; ++seed)
    configs.push_back(drawConfig(seed));
  for (const Config &c : configs) {
    const Operands ops = makeOperands(c, at::kDouble);
    const Result got{at::Tensor(), doubleBackward(nativeConv, c, ops)};
    const Result want{at::Tensor(), doubleBackward(atenConv, c, ops)};
    expectSame(got, want, 1e-9, c);
  }
}

// Images whose patches hold 2^22 elements or more take the weight gradient
// image by image (one group); the sweep's images are smaller. 2-d and 1-d
// (through 2-d), one group and two, stride 1 (input gradient by convolution)
// and 2 (by col2im); all with patches past that size but the strided one.
TEST(NativeConvolution, LargeImagesMatchAtenForwardEveryGradientAndDoubleBackward) {
  std::vector<Config> configs{fixedConfig(2, false, 1, 16, 4, 3, {1, 1, 1, 0}),
                              fixedConfig(2, false, 2, 32, 4, 3, {1, 2, 2, 0}),
                              fixedConfig(2, false, 1, 16, 3, 3, {2, 1, 1, 0}),
                              fixedConfig(1, false, 1, 64, 3, 3, {1, 2, 2, 0})};
  for (Config &c : configs)
    c.size = c.dims == 2 ? IntList{176, 176} : IntList{22000}; // 16 * 9 * 176^2, 64 * 3 * 22000
  for (const Config &c : configs) {
    const Operands ops = makeOperands(c, at::kDouble);
    expectSame(forwardAndGradients(nativeConv, c, ops), forwardAndGradients(atenConv, c, ops),
               1e-10, c);
    const Result got{at::Tensor(), doubleBackward(nativeConv, c, ops)};
    const Result want{at::Tensor(), doubleBackward(atenConv, c, ops)};
    expectSame(got, want, 1e-9, c);
  }
}

// ---- 3. No convolution op runs ---------------------------------------------

std::vector<std::string> &recordedOps() {
  static thread_local std::vector<std::string> names;
  return names;
}

std::unique_ptr<at::ObserverContext> recordOp(const at::RecordFunction &fn) {
  recordedOps().emplace_back(fn.name());
  return nullptr;
}

// Names of every op and autograd node that `fn` runs on this thread.
std::set<std::string> opsRunBy(const std::function<void()> &fn) {
  recordedOps().clear();
  const auto handle = at::addThreadLocalCallback(at::RecordFunctionCallback(&recordOp));
  try {
    fn();
  } catch (...) {
    at::removeCallback(handle);
    throw;
  }
  at::removeCallback(handle);
  return {recordedOps().begin(), recordedOps().end()};
}

// ATen's convolution ops and autograd nodes (ConvolutionBackward0, ...), and
// anything of a DNN library: what consults the global cuDNN/MIOpen flag.
// ATen's direct depthwise kernel (_conv_depthwise2d, CUDA only) does not.
std::vector<std::string> convolutionOps(const std::set<std::string> &names) {
  std::vector<std::string> found;
  for (const std::string &name : names) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    const bool ours = lower.find("rdna1::") != std::string::npos;
    const bool directDepthwise = lower == "aten::_conv_depthwise2d";
    const bool convolution = lower.find("conv") != std::string::npos;
    const bool dnnLibrary = lower.find("cudnn") != std::string::npos ||
                            lower.find("miopen") != std::string::npos ||
                            lower.find("mkldnn") != std::string::npos;
    if (dnnLibrary || (convolution && !ours && !directDepthwise))
      found.push_back(name);
  }
  return found;
}

void runForwardBackwardAndDoubleBackward(const Conv &conv, const Config &c,
                                         bool channelsLast = false) {
  Operands ops = makeOperands(c, at::kDouble);
  if (channelsLast)
    ops = convert(ops, at::kDouble, channelsLastFormat(c));
  forwardAndGradients(conv, c, ops);
  doubleBackward(conv, c, ops);
}

TEST(NativeConvolution, ForwardAndBackwardRunNoConvolutionOp) {
  std::vector<Config> configs = coverageConfigs();
  for (uint64_t seed = 0; seed < 40; ++seed)
    configs.push_back(drawConfig(seed));
  const std::set<std::string> names = opsRunBy([&configs] {
    for (const Config &c : configs) {
      runForwardBackwardAndDoubleBackward(nativeConv, c);
      if (c.dims > 1)
        runForwardBackwardAndDoubleBackward(nativeConv, c, true);
    }
  });
  EXPECT_TRUE(convolutionOps(names).empty())
      << "convolution ops ran: " << c10::Join(", ", convolutionOps(names));
  // The record saw the building blocks, so it did record ops.
  for (const char *op : {"aten::im2col", "aten::col2im", "aten::unfold", "aten::bmm"})
    EXPECT_TRUE(names.count(op)) << op << " not recorded";
  // Depthwise layers took their own formulation (and its own backward).
  EXPECT_TRUE(std::any_of(names.begin(), names.end(), [](const std::string &name) {
    return name.find("DepthwiseFunction") != std::string::npos;
  })) << "the depthwise formulation did not run";
}

// Where no gradient is recorded (inference, and a backward's input gradient:
// the stride-1 convolution of the output gradient, with input and output
// channels swapped), a stride-1 2-d convolution with 16 or more input
// channels, no more output channels and 128 x 128 output points or more
// gathers its patches one kernel row at a time and accumulates a GEMM per
// kernel row (baddbmm_); smaller images take the whole patches.
TEST(NativeConvolution, RowPatchesMatchAtenForwardAndEveryGradient) {
  const auto withSize = [](Config c, IntList size) {
    c.size = std::move(size);
    return c;
  };
  Config wide = fixedConfig(2, false, 1, 16, 12, 3, {1, 1, 1, 0});
  wide.kernel = {3, 2};
  wide.padding = {1, 0};
  const std::vector<Config> forwardByRows{
      withSize(fixedConfig(2, false, 1, 16, 8, 3, {1, 1, 1, 0}), {130, 129}),
      withSize(fixedConfig(2, false, 1, 16, 16, 3, {1, 2, 2, 0}), {128, 131}),
      withSize(wide, {129, 130})};
  const Config inputGradientByRows =
      withSize(fixedConfig(2, false, 1, 8, 16, 3, {1, 1, 1, 0}), {128, 128});
  const Config small = withSize(fixedConfig(2, false, 1, 16, 8, 3, {1, 1, 1, 0}), {64, 64});
  const auto accumulatesRows = [](const std::function<void()> &fn) {
    return opsRunBy(fn).count("aten::baddbmm_") > 0;
  };
  const auto inference = [&](const Config &c) {
    const Operands ops = makeOperands(c, at::kDouble);
    at::NoGradGuard noGrad;
    at::Tensor got, want = atenConv(c, ops);
    const bool byRows = accumulatesRows([&] { got = nativeConv(c, ops); });
    EXPECT_TRUE(close("inference output", got, want, 1e-10)) << c.describe();
    return byRows;
  };
  const auto training = [&](const Config &c) {
    const Operands ops = makeOperands(c, at::kDouble);
    Result got;
    const bool byRows = accumulatesRows([&] { got = forwardAndGradients(nativeConv, c, ops); });
    expectSame(got, forwardAndGradients(atenConv, c, ops), 1e-10, c);
    return byRows;
  };
  for (const Config &c : forwardByRows) {
    EXPECT_TRUE(inference(c)) << c.describe();
    training(c);
  }
  EXPECT_FALSE(inference(inputGradientByRows));
  EXPECT_TRUE(training(inputGradientByRows));
  EXPECT_FALSE(inference(small));
  EXPECT_FALSE(training(small));
}

// A stride-1 convolution's input gradient, and a stride-1 transposed
// convolution, are convolutions (im2col, no col2im); a strided convolution's
// input gradient is summed by col2im.
TEST(NativeConvolution, InputGradientOfStrideOneConvolutionGathersPatches) {
  const auto backwardOps = [](const Config &c) {
    const Operands ops = makeOperands(c, at::kFloat);
    return opsRunBy([&] { forwardAndGradients(nativeConv, c, ops); });
  };
  const std::set<std::string> strideOne =
      backwardOps(fixedConfig(2, false, 2, 4, 6, 3, {1, 1, 1, 0}));
  EXPECT_FALSE(strideOne.count("aten::col2im"));
  EXPECT_TRUE(strideOne.count("aten::im2col"));
  EXPECT_TRUE(std::any_of(strideOne.begin(), strideOne.end(), [](const std::string &name) {
    return name.find("PatchConvolution2dFunction") != std::string::npos;
  })) << "the patch convolution's backward did not run";
  EXPECT_FALSE(backwardOps(fixedConfig(2, true, 2, 4, 6, 3, {1, 1, 1, 0})).count("aten::col2im"));
  EXPECT_TRUE(backwardOps(fixedConfig(2, false, 2, 4, 6, 3, {2, 1, 1, 0})).count("aten::col2im"));
}

// The check above would notice ATen's convolution.
TEST(NativeConvolution, OpRecordCatchesAtenConvolution) {
  const Config c = coverageConfigs()[3];
  const std::set<std::string> names =
      opsRunBy([&c] { runForwardBackwardAndDoubleBackward(atenConv, c); });
  EXPECT_FALSE(convolutionOps(names).empty());
}

// ---- Errors -----------------------------------------------------------------

TEST(NativeConvolution, RejectsInvalidArgumentsWithItsPrefix) {
  const Config c = coverageConfigs()[3];
  const Operands ops = makeOperands(c, at::kFloat);
  const auto expectRejected = [&](const std::function<void()> &fn, const char *needle) {
    try {
      fn();
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const c10::Error &e) {
      const std::string message = e.what_without_backtrace();
      EXPECT_NE(message.find("rdna1::conv: "), std::string::npos) << message;
      EXPECT_NE(message.find(needle), std::string::npos) << message;
    }
  };
  Operands wrongChannels = ops;
  wrongChannels.input = at::randn({2, c.inChannels + 1, 7, 6});
  expectRejected([&] { nativeConv(c, wrongChannels); }, "channels");
  Operands wrongType = ops;
  wrongType.weight = ops.weight.detach().to(at::kDouble);
  expectRejected([&] { nativeConv(c, wrongType); }, "type");
  Operands wrongBias = ops;
  wrongBias.bias = at::randn({c.outChannels + 1});
  expectRejected([&] { nativeConv(c, wrongBias); }, "bias");
  Config tooSmall = c;
  tooSmall.padding = {0, 0};
  Operands tiny = ops;
  tiny.input = at::randn({2, c.inChannels, 2, 2});
  expectRejected([&] { nativeConv(tooSmall, tiny); }, "too small");
  Config badOutputPadding = coverageConfigs()[6];
  badOutputPadding.outputPadding = {2, 2};
  expectRejected([&] { nativeConv(badOutputPadding, makeOperands(badOutputPadding, at::kFloat)); },
                 "output padding");
}

} // namespace
