// Numerics of the rdna1:: convolution ops, called through the dispatcher as a
// rewritten TorchScript model calls them, against ATen's convolution and its
// autograd: forward, gradients, double backward, string padding, unbatched
// inputs, reduced precision and the errors users see.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/utils.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace {

using IntList = std::vector<int64_t>;
// Input, weight, bias: which require grad, or which gradients to compute.
using GradMask = std::array<bool, 3>;
using ConvFn = std::function<at::Tensor(const at::Tensor &, const at::Tensor &,
                                        const c10::optional<at::Tensor> &)>;

constexpr GradMask kAllGrads{true, true, true};

// ---- The ops under test, through the dispatcher ----------------------------

at::Tensor rdnaConv(const at::Tensor &input, const at::Tensor &weight,
                    const c10::optional<at::Tensor> &bias, at::IntArrayRef stride,
                    at::IntArrayRef padding, at::IntArrayRef dilation, bool transposed,
                    at::IntArrayRef outputPadding, int64_t groups) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("rdna1::conv", "")
          .typed<at::Tensor(const at::Tensor &, const at::Tensor &,
                            const c10::optional<at::Tensor> &, at::IntArrayRef, at::IntArrayRef,
                            at::IntArrayRef, bool, at::IntArrayRef, int64_t)>();
  return op.call(input, weight, bias, stride, padding, dilation, transposed, outputPadding, groups);
}

at::Tensor rdnaConvPadding(const at::Tensor &input, const at::Tensor &weight,
                           const c10::optional<at::Tensor> &bias, at::IntArrayRef stride,
                           c10::string_view padding, at::IntArrayRef dilation, int64_t groups) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rdna1::conv", "padding")
                             .typed<at::Tensor(const at::Tensor &, const at::Tensor &,
                                               const c10::optional<at::Tensor> &, at::IntArrayRef,
                                               c10::string_view, at::IntArrayRef, int64_t)>();
  return op.call(input, weight, bias, stride, padding, dilation, groups);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor>
rdnaConvBackward(const at::Tensor &gradOutput, const at::Tensor &input, const at::Tensor &weight,
                 c10::OptionalIntArrayRef biasSizes, at::IntArrayRef stride,
                 at::IntArrayRef padding, at::IntArrayRef dilation, bool transposed,
                 at::IntArrayRef outputPadding, int64_t groups, GradMask outputMask) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("rdna1::conv_backward", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
              const at::Tensor &, const at::Tensor &, const at::Tensor &, c10::OptionalIntArrayRef,
              at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, bool, at::IntArrayRef, int64_t,
              std::array<bool, 3>)>();
  return op.call(gradOutput, input, weight, biasSizes, stride, padding, dilation, transposed,
                 outputPadding, groups, outputMask);
}

// ---- Dtypes and comparisons ------------------------------------------------

// The runtime computes half and bfloat16 in float and casts back.
at::ScalarType computeType(at::ScalarType dtype) {
  return (dtype == at::kHalf || dtype == at::kBFloat16) ? at::kFloat : dtype;
}

struct Tolerance {
  double rtol;
  double atol;
};

Tolerance toleranceFor(at::ScalarType dtype) {
  switch (dtype) {
  case at::kDouble:
    return {1e-10, 1e-10};
  case at::kFloat:
    return {1e-5, 1e-5};
  case at::kHalf:
    return {1e-2, 1e-2};
  default: // bfloat16: 8 bits of mantissa
    return {3e-2, 3e-2};
  }
}

std::string dtypeName(at::ScalarType dtype) {
  switch (dtype) {
  case at::kDouble:
    return "f64";
  case at::kFloat:
    return "f32";
  case at::kHalf:
    return "f16";
  case at::kBFloat16:
    return "bf16";
  default:
    return c10::toString(dtype);
  }
}

std::string maskName(GradMask mask) {
  std::string name;
  for (bool bit : mask)
    name += bit ? '1' : '0';
  return name;
}

// Both undefined, or same sizes and allclose (compared in double).
::testing::AssertionResult tensorsClose(const at::Tensor &actual, const at::Tensor &expected,
                                        Tolerance tol) {
  if (!actual.defined() || !expected.defined()) {
    if (actual.defined() == expected.defined())
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << (actual.defined() ? "defined, but the reference is undefined"
                                : "undefined, but the reference is defined");
  }
  if (actual.sizes() != expected.sizes())
    return ::testing::AssertionFailure()
           << "sizes " << actual.sizes() << ", reference sizes " << expected.sizes();
  const at::Tensor a = actual.detach().to(at::kDouble);
  const at::Tensor e = expected.detach().to(at::kDouble);
  if (at::allclose(a, e, tol.rtol, tol.atol))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "max abs diff " << (a - e).abs().max().item<double>() << " (max abs reference "
         << e.abs().max().item<double>() << ", rtol " << tol.rtol << ", atol " << tol.atol << ")";
}

// `actual` matches `expected` with the tolerance of `dtype`, and has that dtype.
void expectTensorMatches(const std::string &what, const at::Tensor &actual,
                         const at::Tensor &expected, at::ScalarType dtype) {
  EXPECT_TRUE(tensorsClose(actual, expected, toleranceFor(dtype))) << what;
  if (actual.defined())
    EXPECT_EQ(actual.scalar_type(), dtype) << what << " has the wrong dtype";
}

// `fn` throws c10::Error whose message mentions every needle (case-insensitively).
void expectErrorMentions(const std::function<void()> &fn,
                         std::initializer_list<const char *> needles) {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  };
  try {
    fn();
    ADD_FAILURE() << "expected a c10::Error";
  } catch (const c10::Error &e) {
    const std::string message = e.what_without_backtrace();
    for (const char *needle : needles)
      EXPECT_NE(lower(message).find(lower(needle)), std::string::npos)
          << "error message does not mention '" << needle << "': " << message;
  }
}

// ---- Operands, loss and gradients ------------------------------------------

struct Operands {
  at::Tensor input;
  at::Tensor weight;
  c10::optional<at::Tensor> bias;

  // Detached copies in `dtype`.
  Operands to(at::ScalarType dtype) const {
    Operands out{input.detach().to(dtype), weight.detach().to(dtype), c10::nullopt};
    if (bias)
      out.bias = bias->detach().to(dtype);
    return out;
  }
};

// Standard normal operands (no bias if biasSize is 0), drawn in float and
// rounded to `dtype`, so that references can start from the same values.
Operands randomOperands(const IntList &inputShape, const IntList &weightShape, int64_t biasSize,
                        at::ScalarType dtype) {
  Operands out{at::randn(inputShape).to(dtype), at::randn(weightShape).to(dtype), c10::nullopt};
  if (biasSize > 0)
    out.bias = at::randn({biasSize}).to(dtype);
  return out;
}

// Fixed random weights of the loss sum(output * weights), representable in
// `precision`, as a tensor of type `dtype`.
at::Tensor lossWeights(at::IntArrayRef sizes, at::ScalarType precision, at::ScalarType dtype) {
  at::Generator generator = at::detail::createCPUGenerator(/*seed_val=*/20240611);
  return at::randn(sizes, generator, at::kFloat).to(precision).to(dtype);
}

struct ConvResult {
  at::Tensor output;
  bool outputRequiresGrad = false;
  at::Tensor gradInput;
  at::Tensor gradWeight;
  at::Tensor gradBias;
};

// Runs `conv` on leaf copies of `operands` (those selected by `requiresGrad`
// require grad) and back-propagates sum(output * lossWeights(...)). The
// gradients are what autograd accumulated: undefined where none was needed.
ConvResult evaluate(const ConvFn &conv, const Operands &operands, at::ScalarType precision,
                    GradMask requiresGrad = kAllGrads) {
  at::Tensor input = operands.input.detach().requires_grad_(requiresGrad[0]);
  at::Tensor weight = operands.weight.detach().requires_grad_(requiresGrad[1]);
  c10::optional<at::Tensor> bias;
  if (operands.bias)
    bias = operands.bias->detach().requires_grad_(requiresGrad[2]);
  const at::Tensor output = conv(input, weight, bias);
  ConvResult result;
  result.outputRequiresGrad = output.requires_grad();
  if (output.requires_grad())
    (output * lossWeights(output.sizes(), precision, output.scalar_type())).sum().backward();
  result.output = output.detach();
  result.gradInput = input.grad();
  result.gradWeight = weight.grad();
  result.gradBias = bias ? bias->grad() : at::Tensor();
  return result;
}

void expectResultsMatch(const ConvResult &actual, const ConvResult &expected,
                        at::ScalarType dtype) {
  EXPECT_EQ(actual.outputRequiresGrad, expected.outputRequiresGrad);
  expectTensorMatches("output", actual.output, expected.output, dtype);
  expectTensorMatches("grad of input", actual.gradInput, expected.gradInput, dtype);
  expectTensorMatches("grad of weight", actual.gradWeight, expected.gradWeight, dtype);
  expectTensorMatches("grad of bias", actual.gradBias, expected.gradBias, dtype);
}

// Output and gradients of `actualConv` on `operands` match those of
// `referenceConv`, which runs in the runtime's compute type on the same
// (already rounded) values.
void expectConvMatches(const ConvFn &actualConv, const ConvFn &referenceConv,
                       const Operands &operands, GradMask requiresGrad = kAllGrads) {
  const at::ScalarType dtype = operands.input.scalar_type();
  const ConvResult actual = evaluate(actualConv, operands, dtype, requiresGrad);
  const ConvResult expected =
      evaluate(referenceConv, operands.to(computeType(dtype)), dtype, requiresGrad);
  expectResultsMatch(actual, expected, dtype);
}

// ---- Convolution configurations --------------------------------------------

enum class Groups { One, Two, Depthwise };

struct ConvSpec {
  int64_t dims = 2;
  bool transposed = false;
  Groups groups = Groups::One;
  int64_t stride = 1;
  int64_t dilation = 1;
  int64_t padding = 0;
  int64_t outputPadding = 0;
  bool bias = true;
};

int64_t inChannels(const ConvSpec &s) {
  return s.groups == Groups::One ? 3 : 4;
}
int64_t outChannels(const ConvSpec &s) {
  return s.groups == Groups::Two ? 6 : 4;
}
int64_t groupCount(const ConvSpec &s) {
  return s.groups == Groups::One ? 1 : s.groups == Groups::Two ? 2 : inChannels(s);
}

// Non-cubic sizes and kernels, so that swapped dimensions show.
IntList spatialSizes(int64_t dims) {
  return dims == 1 ? IntList{7} : dims == 2 ? IntList{6, 5} : IntList{5, 6, 4};
}
IntList kernelSizes(int64_t dims) {
  return dims == 1 ? IntList{3} : dims == 2 ? IntList{3, 2} : IntList{2, 3, 2};
}

IntList concat(IntList head, const IntList &tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

IntList inputShape(const ConvSpec &s) {
  return concat({2, inChannels(s)}, spatialSizes(s.dims));
}

IntList weightShape(const ConvSpec &s) {
  const IntList channels = s.transposed ? IntList{inChannels(s), outChannels(s) / groupCount(s)}
                                        : IntList{outChannels(s), inChannels(s) / groupCount(s)};
  return concat(channels, kernelSizes(s.dims));
}

Operands specOperands(const ConvSpec &s, at::ScalarType dtype) {
  return randomOperands(inputShape(s), weightShape(s), s.bias ? outChannels(s) : 0, dtype);
}

// The spec's hyper-parameters as lists of `length` elements (1: broadcast by the op).
struct ConvLists {
  IntList stride, padding, dilation, outputPadding;
};

ConvLists convLists(const ConvSpec &s, int64_t length) {
  return {IntList(length, s.stride), IntList(length, s.padding), IntList(length, s.dilation),
          IntList(length, s.outputPadding)};
}

ConvFn rdnaConvFn(const ConvSpec &s, bool singleElementLists = false) {
  const ConvLists l = convLists(s, singleElementLists ? 1 : s.dims);
  const bool transposed = s.transposed;
  const int64_t groups = groupCount(s);
  return [=](const at::Tensor &input, const at::Tensor &weight,
             const c10::optional<at::Tensor> &bias) {
    return rdnaConv(input, weight, bias, l.stride, l.padding, l.dilation, transposed,
                    l.outputPadding, groups);
  };
}

ConvFn atenConvFn(const ConvSpec &s) {
  const ConvLists l = convLists(s, s.dims);
  const bool transposed = s.transposed;
  const int64_t groups = groupCount(s);
  return [=](const at::Tensor &input, const at::Tensor &weight,
             const c10::optional<at::Tensor> &bias) {
    return at::convolution(input, weight, bias, l.stride, l.padding, l.dilation, transposed,
                           l.outputPadding, groups);
  };
}

// A name usable as a gtest parameter name.
std::string describe(const ConvSpec &s) {
  std::ostringstream os;
  os << "conv" << s.dims << "d" << (s.transposed ? "_transposed" : "");
  os << (s.groups == Groups::One   ? "_groups1"
         : s.groups == Groups::Two ? "_groups2"
                                   : "_depthwise");
  os << "_stride" << s.stride << "_dilation" << s.dilation << "_padding" << s.padding;
  if (s.transposed)
    os << "_outpad" << s.outputPadding;
  os << (s.bias ? "_bias" : "_nobias");
  return os.str();
}

void PrintTo(const ConvSpec &s, std::ostream *os) {
  *os << describe(s);
}

ConvSpec makeSpec(int64_t dims, bool transposed, Groups groups, int64_t stride, int64_t dilation,
                  int64_t padding, int64_t outputPadding, bool bias) {
  ConvSpec s;
  s.dims = dims;
  s.transposed = transposed;
  s.groups = groups;
  s.stride = stride;
  s.dilation = dilation;
  s.padding = padding;
  s.outputPadding = outputPadding;
  s.bias = bias;
  return s;
}

const std::array<at::ScalarType, 4> kAllDtypes{at::kFloat, at::kDouble, at::kBFloat16, at::kHalf};

// ---- 1. Forward and gradients over a grid of configurations ----------------

// Every combination; output padding 1 only for transposed convolutions where
// ATen allows it (smaller than the stride or the dilation).
std::vector<ConvSpec> gridSpecs() {
  std::vector<ConvSpec> specs;
  for (int64_t dims : {1, 2, 3})
    for (bool transposed : {false, true})
      for (Groups groups : {Groups::One, Groups::Two, Groups::Depthwise})
        for (int64_t stride : {1, 2})
          for (int64_t dilation : {1, 2})
            for (int64_t padding : {0, 1})
              for (int64_t outputPadding : {0, 1}) {
                if (outputPadding > 0 &&
                    (!transposed || (outputPadding >= stride && outputPadding >= dilation)))
                  continue;
                for (bool bias : {false, true})
                  specs.push_back(makeSpec(dims, transposed, groups, stride, dilation, padding,
                                           outputPadding, bias));
              }
  return specs;
}

std::string specName(const ::testing::TestParamInfo<ConvSpec> &info) {
  return describe(info.param);
}

class ConvGridTest : public ::testing::TestWithParam<ConvSpec> {};

TEST_P(ConvGridTest, MatchesATenInEveryDtype) {
  for (at::ScalarType dtype : kAllDtypes) {
    SCOPED_TRACE("dtype " + dtypeName(dtype));
    torch::manual_seed(1);
    expectConvMatches(rdnaConvFn(GetParam()), atenConvFn(GetParam()),
                      specOperands(GetParam(), dtype));
  }
}

INSTANTIATE_TEST_SUITE_P(Grid, ConvGridTest, ::testing::ValuesIn(gridSpecs()), specName);

// Channels-last and strided (non-contiguous) operands give the same numbers.
TEST(ConvLayoutTest, NonContiguousOperandsMatchATen) {
  for (const ConvSpec &spec : {makeSpec(2, false, Groups::Two, 2, 1, 1, 0, true),
                               makeSpec(2, true, Groups::One, 2, 2, 1, 1, true)}) {
    SCOPED_TRACE(describe(spec));
    torch::manual_seed(10);
    Operands operands = specOperands(spec, at::kFloat);
    operands.input = operands.input.contiguous(at::MemoryFormat::ChannelsLast);
    // Same sizes and values, but every other element of a wider tensor.
    operands.weight = at::repeat_interleave(operands.weight, 2, -1).slice(-1, 0, c10::nullopt, 2);
    ASSERT_FALSE(operands.weight.is_contiguous());
    expectConvMatches(rdnaConvFn(spec), atenConvFn(spec), operands);
  }
}

// ---- 2. Only the gradients asked for ---------------------------------------

struct GradMaskCase {
  ConvSpec spec;
  GradMask requiresGrad;
};

void PrintTo(const GradMaskCase &c, std::ostream *os) {
  *os << describe(c.spec) << " requires_grad(input, weight, bias)=" << maskName(c.requiresGrad);
}

std::vector<GradMaskCase> gradMaskCases() {
  const std::vector<ConvSpec> specs{
      makeSpec(2, false, Groups::One, 1, 1, 1, 0, true),
      makeSpec(2, true, Groups::Two, 2, 1, 1, 1, true),
      makeSpec(1, false, Groups::Depthwise, 1, 2, 1, 0, true),
      // ATen's convolution_backward returns grad_weight here even when not asked for.
      makeSpec(3, false, Groups::Two, 2, 1, 0, 0, true),
  };
  std::vector<GradMaskCase> cases;
  for (ConvSpec spec : specs)
    for (bool bias : {true, false}) {
      spec.bias = bias;
      for (int bits = 0; bits < 8; ++bits) {
        const GradMask mask{(bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0};
        if (!bias && mask[2])
          continue; // nothing to require grad
        cases.push_back({spec, mask});
      }
    }
  return cases;
}

class GradMaskTest : public ::testing::TestWithParam<GradMaskCase> {};

TEST_P(GradMaskTest, GradientsOnlyForOperandsThatRequireGrad) {
  const GradMaskCase &c = GetParam();
  torch::manual_seed(2);
  const Operands operands = specOperands(c.spec, at::kFloat);
  const ConvResult actual = evaluate(rdnaConvFn(c.spec), operands, at::kFloat, c.requiresGrad);
  const bool hasBias = c.spec.bias;
  EXPECT_EQ(actual.outputRequiresGrad,
            c.requiresGrad[0] || c.requiresGrad[1] || (hasBias && c.requiresGrad[2]));
  EXPECT_EQ(actual.gradInput.defined(), c.requiresGrad[0]);
  EXPECT_EQ(actual.gradWeight.defined(), c.requiresGrad[1]);
  EXPECT_EQ(actual.gradBias.defined(), hasBias && c.requiresGrad[2]);
  const ConvResult expected = evaluate(atenConvFn(c.spec), operands, at::kFloat, c.requiresGrad);
  expectResultsMatch(actual, expected, at::kFloat);
}

INSTANTIATE_TEST_SUITE_P(Masks, GradMaskTest, ::testing::ValuesIn(gradMaskCases()),
                         [](const ::testing::TestParamInfo<GradMaskCase> &info) {
                           return describe(info.param.spec) + "_requires" +
                                  maskName(info.param.requiresGrad);
                         });

// ---- 3. Inference mode and no-grad mode ------------------------------------

struct DtypeCase {
  ConvSpec spec;
  at::ScalarType dtype;
};

void PrintTo(const DtypeCase &c, std::ostream *os) {
  *os << describe(c.spec) << " " << dtypeName(c.dtype);
}

std::string dtypeCaseName(const ::testing::TestParamInfo<DtypeCase> &info) {
  return describe(info.param.spec) + "_" + dtypeName(info.param.dtype);
}

const std::vector<DtypeCase> kModeCases{
    {makeSpec(1, false, Groups::One, 1, 1, 1, 0, true), at::kFloat},
    {makeSpec(2, false, Groups::Two, 2, 2, 1, 0, false), at::kDouble},
    {makeSpec(2, true, Groups::Two, 2, 1, 1, 1, true), at::kDouble},
    {makeSpec(3, false, Groups::Depthwise, 1, 2, 1, 0, true), at::kBFloat16},
    {makeSpec(3, true, Groups::One, 2, 2, 0, 1, true), at::kHalf},
};

class ModeTest : public ::testing::TestWithParam<DtypeCase> {
protected:
  void SetUp() override {
    torch::manual_seed(3);
    const DtypeCase &c = GetParam();
    operands = specOperands(c.spec, c.dtype);
    // Requiring grad must not matter when gradients are off.
    operands.input.requires_grad_(true);
    operands.weight.requires_grad_(true);
    at::NoGradGuard noGrad;
    const Operands reference = operands.to(computeType(c.dtype));
    expected = atenConvFn(c.spec)(reference.input, reference.weight, reference.bias);
  }

  Operands operands;
  at::Tensor expected;
};

// Under inference mode the CompositeExplicitAutograd kernel runs, not the Autograd one.
TEST_P(ModeTest, InferenceModeMatchesATen) {
  const DtypeCase &c = GetParam();
  at::Tensor output;
  at::Tensor outputOfInferenceTensors;
  {
    c10::InferenceMode guard;
    output = rdnaConvFn(c.spec)(operands.input, operands.weight, operands.bias);
    // Tensors made in inference mode are inference tensors.
    const Operands inferenceOperands{
        operands.input.clone(), operands.weight.clone(),
        operands.bias ? c10::optional<at::Tensor>(operands.bias->clone()) : c10::nullopt};
    ASSERT_TRUE(inferenceOperands.input.is_inference());
    outputOfInferenceTensors = rdnaConvFn(c.spec)(inferenceOperands.input, inferenceOperands.weight,
                                                  inferenceOperands.bias);
  }
  EXPECT_TRUE(output.is_inference());
  EXPECT_FALSE(output.requires_grad());
  expectTensorMatches("output", output, expected, c.dtype);
  expectTensorMatches("output of inference tensors", outputOfInferenceTensors, expected, c.dtype);
}

TEST_P(ModeTest, NoGradModeMatchesATen) {
  const DtypeCase &c = GetParam();
  at::NoGradGuard noGrad;
  const at::Tensor output = rdnaConvFn(c.spec)(operands.input, operands.weight, operands.bias);
  EXPECT_FALSE(output.requires_grad());
  expectTensorMatches("output", output, expected, c.dtype);
}

INSTANTIATE_TEST_SUITE_P(Modes, ModeTest, ::testing::ValuesIn(kModeCases), dtypeCaseName);

// What the mode tests rely on: rdna1::conv has a kernel for each side of autograd.
TEST(ConvRegistrationTest, ConvHasAutogradAndCompositeExplicitKernels) {
  const c10::OperatorHandle op = c10::Dispatcher::singleton().findSchemaOrThrow("rdna1::conv", "");
  EXPECT_TRUE(op.hasKernelForDispatchKey(c10::DispatchKey::CompositeExplicitAutograd));
  EXPECT_TRUE(op.hasKernelForDispatchKey(c10::DispatchKey::Autograd));
}

// ---- 4. String padding -----------------------------------------------------

struct PaddingCase {
  int64_t dims;
  bool evenKernel; // with dilation 1, 'same' pads asymmetrically
  int64_t dilation;
  std::string mode;
  int64_t groups;
  at::ScalarType dtype;
};

std::string paddingCaseName(const PaddingCase &c) {
  std::ostringstream os;
  os << "conv" << c.dims << "d_" << c.mode << (c.evenKernel ? "_evenkernel" : "_oddkernel")
     << "_dilation" << c.dilation << "_groups" << c.groups << "_" << dtypeName(c.dtype);
  return os.str();
}

void PrintTo(const PaddingCase &c, std::ostream *os) {
  *os << paddingCaseName(c);
}

Operands paddingOperands(const PaddingCase &c) {
  const IntList kernel = c.dims == 1 ? (c.evenKernel ? IntList{4} : IntList{3})
                                     : (c.evenKernel ? IntList{4, 2} : IntList{3, 5});
  const IntList spatial = c.dims == 1 ? IntList{9} : IntList{10, 9};
  return randomOperands(concat({2, 4}, spatial), concat({6, 4 / c.groups}, kernel), 6, c.dtype);
}

// at::conv1d / at::conv2d with string padding.
at::Tensor atenConvStringPadding(const at::Tensor &input, const at::Tensor &weight,
                                 const c10::optional<at::Tensor> &bias, at::IntArrayRef stride,
                                 c10::string_view padding, at::IntArrayRef dilation,
                                 int64_t groups) {
  const int64_t dims = weight.dim() - 2;
  if (dims == 1)
    return at::conv1d(input, weight, bias, stride, padding, dilation, groups);
  return at::conv2d(input, weight, bias, stride, padding, dilation, groups);
}

class StringPaddingTest : public ::testing::TestWithParam<PaddingCase> {};

TEST_P(StringPaddingTest, MatchesATen) {
  const PaddingCase &c = GetParam();
  torch::manual_seed(4);
  const Operands operands = paddingOperands(c);
  const IntList stride(c.dims, 1);
  const IntList dilation(c.dims, c.dilation);
  const ConvFn rdna = [&](const at::Tensor &input, const at::Tensor &weight,
                          const c10::optional<at::Tensor> &bias) {
    return rdnaConvPadding(input, weight, bias, stride, c.mode, dilation, c.groups);
  };
  const ConvFn aten = [&](const at::Tensor &input, const at::Tensor &weight,
                          const c10::optional<at::Tensor> &bias) {
    return atenConvStringPadding(input, weight, bias, stride, c.mode, dilation, c.groups);
  };
  expectConvMatches(rdna, aten, operands);
  if (c.mode == "same") {
    const at::Tensor output = rdna(operands.input, operands.weight, operands.bias);
    EXPECT_EQ(output.sizes().slice(2), operands.input.sizes().slice(2));
  }
}

std::vector<PaddingCase> paddingCases() {
  std::vector<PaddingCase> cases;
  for (int64_t dims : {1, 2})
    for (bool evenKernel : {false, true})
      for (int64_t dilation : {1, 2})
        for (const char *mode : {"same", "valid"})
          for (int64_t groups : {1, 2})
            for (at::ScalarType dtype : {at::kFloat, at::kDouble})
              cases.push_back({dims, evenKernel, dilation, mode, groups, dtype});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Modes, StringPaddingTest, ::testing::ValuesIn(paddingCases()),
                         [](const ::testing::TestParamInfo<PaddingCase> &info) {
                           return paddingCaseName(info.param);
                         });

TEST(StringPaddingErrorsTest, ValidWithStrideMatchesATen) {
  torch::manual_seed(4);
  const Operands operands = randomOperands({2, 3, 9, 8}, {4, 3, 3, 2}, 4, at::kDouble);
  const IntList stride{2, 3};
  const IntList dilation{1, 2};
  expectConvMatches(
      [&](const at::Tensor &input, const at::Tensor &weight,
          const c10::optional<at::Tensor> &bias) {
        return rdnaConvPadding(input, weight, bias, stride, "valid", dilation, 1);
      },
      [&](const at::Tensor &input, const at::Tensor &weight,
          const c10::optional<at::Tensor> &bias) {
        return at::conv2d(input, weight, bias, stride, "valid", dilation, 1);
      },
      operands);
}

TEST(StringPaddingErrorsTest, SameWithStrideThrows) {
  const Operands conv1d = randomOperands({2, 3, 9}, {4, 3, 3}, 4, at::kFloat);
  expectErrorMentions(
      [&] { rdnaConvPadding(conv1d.input, conv1d.weight, conv1d.bias, {2}, "same", {1}, 1); },
      {"strided"});
  const Operands conv2d = randomOperands({2, 3, 9, 8}, {4, 3, 3, 3}, 4, at::kFloat);
  expectErrorMentions(
      [&] {
        rdnaConvPadding(conv2d.input, conv2d.weight, conv2d.bias, {1, 2}, "same", {1, 1}, 1);
      },
      {"strided"});
  {
    c10::InferenceMode guard;
    expectErrorMentions(
        [&] { rdnaConvPadding(conv1d.input, conv1d.weight, conv1d.bias, {2}, "same", {1}, 1); },
        {"strided"});
  }
}

TEST(StringPaddingErrorsTest, InvalidStringThrows) {
  const Operands operands = randomOperands({2, 3, 9, 8}, {4, 3, 3, 3}, 4, at::kFloat);
  for (const char *padding : {"full", "SAME", ""}) {
    SCOPED_TRACE(std::string("padding '") + padding + "'");
    EXPECT_THROW(
        rdnaConvPadding(operands.input, operands.weight, operands.bias, {1, 1}, padding, {1, 1}, 1),
        c10::Error);
  }
  expectErrorMentions(
      [&] {
        rdnaConvPadding(operands.input, operands.weight, operands.bias, {1, 1}, "full", {1, 1}, 1);
      },
      {"full"});
}

// ---- 5. rdna1::conv_backward -----------------------------------------------

struct BackwardCase {
  ConvSpec spec;
  at::ScalarType dtype;
  GradMask mask;
  bool passBiasSizes;
};

std::string backwardCaseName(const BackwardCase &c) {
  return describe(c.spec) + "_" + dtypeName(c.dtype) + "_mask" + maskName(c.mask) +
         (c.passBiasSizes ? "_biassizes" : "_nobiassizes");
}

void PrintTo(const BackwardCase &c, std::ostream *os) {
  *os << backwardCaseName(c);
}

std::vector<BackwardCase> backwardCases() {
  const std::vector<DtypeCase> configs{
      {makeSpec(2, false, Groups::One, 1, 1, 1, 0, true), at::kDouble},
      {makeSpec(2, true, Groups::Two, 2, 1, 1, 1, true), at::kFloat},
      {makeSpec(1, false, Groups::Depthwise, 2, 2, 1, 0, true), at::kDouble},
      {makeSpec(3, false, Groups::Two, 2, 1, 0, 0, true), at::kBFloat16},
  };
  std::vector<BackwardCase> cases;
  for (const DtypeCase &config : configs)
    for (bool passBiasSizes : {true, false})
      for (int bits = 0; bits < 8; ++bits) {
        const GradMask mask{(bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0};
        if (!passBiasSizes && mask[2])
          continue; // no bias, no bias gradient
        cases.push_back({config.spec, config.dtype, mask, passBiasSizes});
      }
  return cases;
}

class ConvBackwardTest : public ::testing::TestWithParam<BackwardCase> {};

TEST_P(ConvBackwardTest, MatchesATenConvolutionBackward) {
  const BackwardCase &c = GetParam();
  torch::manual_seed(5);
  const Operands operands = specOperands(c.spec, c.dtype);
  const Operands reference = operands.to(computeType(c.dtype));
  const ConvLists l = convLists(c.spec, c.spec.dims);
  const int64_t groups = groupCount(c.spec);
  const at::Tensor output =
      at::convolution(reference.input, reference.weight, reference.bias, l.stride, l.padding,
                      l.dilation, c.spec.transposed, l.outputPadding, groups);
  const at::Tensor gradOutput = at::randn(output.sizes()).to(c.dtype);
  const IntList biasSizes{outChannels(c.spec)};
  const c10::OptionalIntArrayRef biasSizesArg =
      c.passBiasSizes ? c10::OptionalIntArrayRef(biasSizes) : c10::OptionalIntArrayRef();

  at::Tensor gradInput, gradWeight, gradBias;
  std::tie(gradInput, gradWeight, gradBias) =
      rdnaConvBackward(gradOutput, operands.input, operands.weight, biasSizesArg, l.stride,
                       l.padding, l.dilation, c.spec.transposed, l.outputPadding, groups, c.mask);
  at::Tensor expectedInput, expectedWeight, expectedBias;
  std::tie(expectedInput, expectedWeight, expectedBias) = at::convolution_backward(
      gradOutput.to(computeType(c.dtype)), reference.input, reference.weight, biasSizesArg,
      l.stride, l.padding, l.dilation, c.spec.transposed, l.outputPadding, groups, c.mask);

  // Requested gradients are defined. ATen may return unrequested ones too
  // (e.g. grad_weight for a grouped 3d mask of (false, false, true)); the
  // comparisons below check that the runtime does exactly what ATen does.
  EXPECT_TRUE(!c.mask[0] || gradInput.defined());
  EXPECT_TRUE(!c.mask[1] || gradWeight.defined());
  EXPECT_TRUE(!c.mask[2] || gradBias.defined());
  expectTensorMatches("grad of input", gradInput, expectedInput, c.dtype);
  expectTensorMatches("grad of weight", gradWeight, expectedWeight, c.dtype);
  expectTensorMatches("grad of bias", gradBias, expectedBias, c.dtype);
}

INSTANTIATE_TEST_SUITE_P(Masks, ConvBackwardTest, ::testing::ValuesIn(backwardCases()),
                         [](const ::testing::TestParamInfo<BackwardCase> &info) {
                           return backwardCaseName(info.param);
                         });

// ---- 6. Double backward ----------------------------------------------------

// Gradients accumulated by a gradient penalty: the norms of the first-order
// gradients of sum(output * v), taken with create_graph, back-propagated to
// the operands and to v itself.
struct PenaltyGrads {
  at::Tensor input, weight, bias, lossWeights;
};

PenaltyGrads gradientPenalty(const ConvFn &conv, const Operands &operands,
                             at::ScalarType precision) {
  const at::Tensor input = operands.input.detach().requires_grad_();
  const at::Tensor weight = operands.weight.detach().requires_grad_();
  c10::optional<at::Tensor> bias;
  if (operands.bias)
    bias = operands.bias->detach().requires_grad_();
  const at::Tensor output = conv(input, weight, bias);
  const at::Tensor v =
      lossWeights(output.sizes(), precision, output.scalar_type()).requires_grad_();
  torch::autograd::variable_list wrt{input, weight};
  if (bias)
    wrt.push_back(*bias);
  const torch::autograd::variable_list grads =
      torch::autograd::grad({(output * v).sum()}, wrt, {}, /*retain_graph=*/true,
                            /*create_graph=*/true);
  at::Tensor penalty = at::zeros({}, output.options());
  for (const at::Tensor &grad : grads)
    penalty = penalty + grad.norm();
  penalty.backward();
  return {input.grad(), weight.grad(), bias ? bias->grad() : at::Tensor(), v.grad()};
}

class DoubleBackwardTest : public ::testing::TestWithParam<ConvSpec> {};

TEST_P(DoubleBackwardTest, GradientPenaltyMatchesATen) {
  for (at::ScalarType dtype : {at::kDouble, at::kFloat, at::kBFloat16}) {
    SCOPED_TRACE("dtype " + dtypeName(dtype));
    torch::manual_seed(6);
    const Operands operands = specOperands(GetParam(), dtype);
    const PenaltyGrads actual = gradientPenalty(rdnaConvFn(GetParam()), operands, dtype);
    const PenaltyGrads expected =
        gradientPenalty(atenConvFn(GetParam()), operands.to(computeType(dtype)), dtype);
    ASSERT_TRUE(actual.input.defined() && actual.weight.defined() && actual.lossWeights.defined());
    expectTensorMatches("second-order grad of input", actual.input, expected.input, dtype);
    expectTensorMatches("second-order grad of weight", actual.weight, expected.weight, dtype);
    expectTensorMatches("second-order grad of bias", actual.bias, expected.bias, dtype);
    expectTensorMatches("second-order grad of grad_output", actual.lossWeights,
                        expected.lossWeights, dtype);
  }
}

INSTANTIATE_TEST_SUITE_P(Penalty, DoubleBackwardTest,
                         ::testing::Values(makeSpec(2, false, Groups::One, 1, 1, 1, 0, true),
                                           makeSpec(2, false, Groups::One, 2, 2, 0, 0, false),
                                           makeSpec(2, true, Groups::Two, 2, 1, 1, 1, true),
                                           makeSpec(1, false, Groups::Depthwise, 1, 2, 1, 0, true),
                                           makeSpec(3, true, Groups::One, 2, 2, 1, 1, true)),
                         specName);

// ---- 7. Unbatched inputs ---------------------------------------------------

// Like expectConvMatches, and the output has no batch dimension either.
void expectUnbatchedMatches(const ConvFn &rdna, const ConvFn &aten, const Operands &operands) {
  ASSERT_EQ(operands.input.dim(), operands.weight.dim() - 1);
  const at::Tensor output = rdna(operands.input, operands.weight, operands.bias);
  EXPECT_EQ(output.dim(), operands.input.dim());
  expectConvMatches(rdna, aten, operands);
}

TEST(UnbatchedTest, Conv2dMatchesATen) {
  torch::manual_seed(7);
  for (at::ScalarType dtype : {at::kFloat, at::kDouble, at::kBFloat16}) {
    SCOPED_TRACE("dtype " + dtypeName(dtype));
    expectUnbatchedMatches(
        rdnaConvFn(makeSpec(2, false, Groups::Two, 2, 2, 1, 0, true)),
        [](const at::Tensor &input, const at::Tensor &weight,
           const c10::optional<at::Tensor> &bias) {
          return at::conv2d(input, weight, bias, {2, 2}, {1, 1}, {2, 2}, 2);
        },
        randomOperands({4, 7, 6}, {6, 2, 3, 2}, 6, dtype));
  }
}

TEST(UnbatchedTest, Conv1dAndConv3dMatchATen) {
  torch::manual_seed(7);
  expectUnbatchedMatches(
      rdnaConvFn(makeSpec(1, false, Groups::One, 1, 1, 1, 0, true)),
      [](const at::Tensor &input, const at::Tensor &weight, const c10::optional<at::Tensor> &bias) {
        return at::conv1d(input, weight, bias, {1}, {1}, {1}, 1);
      },
      randomOperands({3, 7}, {4, 3, 3}, 4, at::kDouble));
  expectUnbatchedMatches(
      rdnaConvFn(makeSpec(3, false, Groups::One, 2, 1, 1, 0, false)),
      [](const at::Tensor &input, const at::Tensor &weight, const c10::optional<at::Tensor> &bias) {
        return at::conv3d(input, weight, bias, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, 1);
      },
      randomOperands({3, 5, 6, 4}, {4, 3, 2, 3, 2}, 0, at::kDouble));
}

TEST(UnbatchedTest, ConvTranspose2dMatchesATen) {
  torch::manual_seed(7);
  expectUnbatchedMatches(
      rdnaConvFn(makeSpec(2, true, Groups::Two, 2, 1, 1, 1, true)),
      [](const at::Tensor &input, const at::Tensor &weight, const c10::optional<at::Tensor> &bias) {
        return at::conv_transpose2d(input, weight, bias, {2, 2}, {1, 1}, {1, 1}, 2, {1, 1});
      },
      randomOperands({4, 6, 5}, {4, 3, 3, 2}, 6, at::kDouble));
}

TEST(UnbatchedTest, SamePaddingMatchesATen) {
  torch::manual_seed(7);
  expectUnbatchedMatches(
      [](const at::Tensor &input, const at::Tensor &weight, const c10::optional<at::Tensor> &bias) {
        return rdnaConvPadding(input, weight, bias, {1, 1}, "same", {1, 1}, 1);
      },
      [](const at::Tensor &input, const at::Tensor &weight, const c10::optional<at::Tensor> &bias) {
        return at::conv2d(input, weight, bias, {1, 1}, "same", {1, 1}, 1);
      },
      randomOperands({3, 7, 6}, {4, 3, 4, 3}, 4, at::kDouble));
}

TEST(UnbatchedTest, DoubleBackwardMatchesATen) {
  torch::manual_seed(7);
  const Operands operands = randomOperands({3, 7, 6}, {4, 3, 3, 2}, 4, at::kDouble);
  const PenaltyGrads actual = gradientPenalty(
      rdnaConvFn(makeSpec(2, false, Groups::One, 1, 1, 1, 0, true)), operands, at::kDouble);
  const PenaltyGrads expected = gradientPenalty(
      [](const at::Tensor &input, const at::Tensor &weight, const c10::optional<at::Tensor> &bias) {
        return at::conv2d(input, weight, bias, {1, 1}, {1, 1}, {1, 1}, 1);
      },
      operands, at::kDouble);
  expectTensorMatches("second-order grad of input", actual.input, expected.input, at::kDouble);
  expectTensorMatches("second-order grad of weight", actual.weight, expected.weight, at::kDouble);
}

// ---- 8. Mismatched dtypes --------------------------------------------------

TEST(DtypeMismatchTest, ThrowsNamingBothTypes) {
  torch::manual_seed(8);
  struct Mismatch {
    at::ScalarType input, weight, bias;
    const char *first, *second;
  };
  const std::vector<Mismatch> mismatches{
      {at::kFloat, at::kDouble, at::kFloat, "Float", "Double"},
      {at::kDouble, at::kFloat, at::kDouble, "Double", "Float"},
      {at::kBFloat16, at::kFloat, at::kBFloat16, "BFloat16", "Float"},
      {at::kFloat, at::kFloat, at::kDouble, "Float", "Double"},
  };
  const ConvFn conv = rdnaConvFn(makeSpec(2, false, Groups::One, 1, 1, 1, 0, true));
  for (const Mismatch &m : mismatches) {
    SCOPED_TRACE(std::string("input ") + dtypeName(m.input) + ", weight " + dtypeName(m.weight) +
                 ", bias " + dtypeName(m.bias));
    const at::Tensor input = at::randn({2, 3, 6, 5}).to(m.input).requires_grad_();
    const at::Tensor weight = at::randn({4, 3, 3, 2}).to(m.weight).requires_grad_();
    const at::Tensor bias = at::randn({4}).to(m.bias);
    expectErrorMentions([&] { conv(input, weight, bias); }, {m.first, m.second});
    expectErrorMentions(
        [&] {
          rdnaConvPadding(input, weight, bias, {1, 1}, "same", {1, 1}, 1);
        },
        {m.first, m.second});
    c10::InferenceMode guard;
    expectErrorMentions([&] { conv(input, weight, bias); }, {m.first, m.second});
  }
}

// ---- 9. Single-element lists broadcast -------------------------------------

class BroadcastTest : public ::testing::TestWithParam<ConvSpec> {};

TEST_P(BroadcastTest, SingleElementListsMatchFullLists) {
  torch::manual_seed(9);
  expectConvMatches(rdnaConvFn(GetParam(), /*singleElementLists=*/true), atenConvFn(GetParam()),
                    specOperands(GetParam(), at::kDouble));
}

INSTANTIATE_TEST_SUITE_P(Lists, BroadcastTest,
                         ::testing::Values(makeSpec(2, false, Groups::One, 2, 2, 1, 0, true),
                                           makeSpec(3, false, Groups::Two, 2, 1, 1, 0, true),
                                           makeSpec(3, false, Groups::One, 1, 2, 0, 0, false),
                                           makeSpec(2, true, Groups::One, 2, 2, 1, 1, true),
                                           makeSpec(3, true, Groups::Two, 2, 1, 1, 1, false)),
                         specName);

TEST(BroadcastListsTest, ConvBackwardBroadcastsSingleElementLists) {
  torch::manual_seed(9);
  const Operands operands = randomOperands({2, 3, 6, 5}, {4, 3, 3, 2}, 0, at::kDouble);
  const at::Tensor gradOutput =
      at::randn({2, 4, 2, 3}, at::kDouble); // stride 2, dilation 2, padding 1
  const GradMask mask{true, true, true};
  const IntList biasSizes{4};
  at::Tensor gradInput, gradWeight, gradBias;
  std::tie(gradInput, gradWeight, gradBias) = rdnaConvBackward(
      gradOutput, operands.input, operands.weight, biasSizes, {2}, {1}, {2}, false, {0}, 1, mask);
  at::Tensor expectedInput, expectedWeight, expectedBias;
  std::tie(expectedInput, expectedWeight, expectedBias) =
      at::convolution_backward(gradOutput, operands.input, operands.weight, biasSizes, {2, 2},
                               {1, 1}, {2, 2}, false, {0, 0}, 1, mask);
  expectTensorMatches("grad of input", gradInput, expectedInput, at::kDouble);
  expectTensorMatches("grad of weight", gradWeight, expectedWeight, at::kDouble);
  expectTensorMatches("grad of bias", gradBias, expectedBias, at::kDouble);
}

TEST(BroadcastListsTest, SamePaddingBroadcastsSingleElementLists) {
  torch::manual_seed(9);
  expectConvMatches(
      [](const at::Tensor &input, const at::Tensor &weight, const c10::optional<at::Tensor> &bias) {
        return rdnaConvPadding(input, weight, bias, {1}, "same", {2}, 1);
      },
      [](const at::Tensor &input, const at::Tensor &weight, const c10::optional<at::Tensor> &bias) {
        return at::conv2d(input, weight, bias, {1, 1}, "same", {2, 2}, 1);
      },
      randomOperands({2, 3, 9, 8}, {4, 3, 3, 2}, 4, at::kDouble));
}

TEST(BroadcastListsTest, WrongLengthListThrows) {
  const Operands operands = randomOperands({2, 3, 5, 6, 4}, {4, 3, 2, 3, 2}, 4, at::kFloat);
  expectErrorMentions(
      [&] {
        rdnaConv(operands.input, operands.weight, operands.bias, {1, 2}, {0}, {1}, false, {}, 1);
      },
      {"stride"});
  expectErrorMentions(
      [&] {
        rdnaConv(operands.input, operands.weight, operands.bias, {1}, {0, 0}, {1}, false, {}, 1);
      },
      {"padding"});
}

} // namespace
