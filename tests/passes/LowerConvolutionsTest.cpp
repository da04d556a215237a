// IR tests of LowerConvolutions: every forward convolution spelling becomes
// rdna1::conv with its operands in the right slots.
#include "LowerConvolutions.h"

#include <rdna1/OpSchemas.h>

#include "IrTestSupport.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/ir/irparser.h>
#include <torch/csrc/jit/testing/file_check.h>

#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using rdna1::passes::LowerConvolutions;
using rdna1::passes::RewriteCounts;
using rdna1::testing::nodesOfKind;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
using torch::jit::testing::FileCheck;

std::shared_ptr<Graph> parse(const std::string &ir) {
  return rdna1::testing::parseNamed(ir);
}

// A value as the tests name it: "%name" for a named value, the literal for a constant.
std::string describe(Value *value) {
  if (value->node()->kind() == c10::prim::Constant) {
    const auto constant = torch::jit::toIValue(value);
    if (constant->isNone())
      return "None";
    if (constant->isBool())
      return constant->toBool() ? "True" : "False";
    if (constant->isString())
      return "'" + constant->toStringRef() + "'";
    std::ostringstream out;
    out << *constant;
    return out.str();
  }
  return "%" + value->debugName();
}

std::vector<std::string> describeInputs(Node *node) {
  std::vector<std::string> names;
  for (Value *input : node->inputs())
    names.push_back(describe(input));
  return names;
}

// Lowers the only convolution of `ir` and returns the rdna1::conv that replaced it.
Node *lowerSingle(const std::shared_ptr<Graph> &graph, const std::string &originalKind) {
  const RewriteCounts counts = LowerConvolutions(graph);
  graph->lint();
  EXPECT_EQ(counts, (RewriteCounts{{originalKind, 1}}));
  FileCheck().check_not(originalKind + "(")->run(*graph);
  const auto convs = nodesOfKind(graph, rdna1::ops::kConv);
  EXPECT_EQ(convs.size(), 1u) << *graph;
  return convs.empty() ? nullptr : convs.front();
}

// The overload of rdna1::conv that `conv` resolves to ("" or "padding"), as the
// interpreter would look it up in the registered runtime.
std::string resolvedOverload(const Node *conv) {
  const c10::FunctionSchema *schema = conv->maybeSchema();
  EXPECT_NE(schema, nullptr) << "no registered rdna1::conv schema matches " << *conv;
  return schema ? schema->overload_name() : "<unresolved>";
}

using Names = std::vector<std::string>;

const Names kPlainResult{"%x", "%w", "%b", "%stride", "%pad", "%dil", "False", "[]", "%groups"};

// Graph inputs shared by the tests: each operand is a distinct named value, so
// a swapped slot shows up as a wrong name.
constexpr const char *kHeader = R"IR(
graph(%x : Tensor, %w : Tensor, %b : Tensor, %z : Tensor, %stride : int[], %pad : int[],
      %dil : int[], %opad : int[], %groups : int, %transposed : bool, %bench : bool,
      %det : bool, %cudnn : bool, %tf32 : bool, %mode : str):
)IR";

std::shared_ptr<Graph> parseBody(const std::string &body) {
  return parse(kHeader + body);
}

// --- aten::conv1d / conv2d / conv3d ---------------------------------------------------

class PlainConvTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PlainConvTest, IntListPaddingBecomesConvWithTransposedFalseAndEmptyOutputPadding) {
  const std::string kind = GetParam();
  auto graph = parseBody("  %y : Tensor = " + kind +
                         "(%x, %w, %b, %stride, %pad, %dil, %groups)\n  return (%y)\n");
  Node *conv = lowerSingle(graph, kind);
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv), kPlainResult);
  EXPECT_EQ(resolvedOverload(conv), "");
  FileCheck().check("%y : Tensor = rdna1::conv(%x, %w, %b, %stride, %pad, %dil, ")->run(*graph);
}

TEST_P(PlainConvTest, StringPaddingBecomesConvPaddingOverloadWithSevenInputs) {
  const std::string kind = GetParam();
  auto graph = parseBody("  %same : str = prim::Constant[value=\"same\"]()\n"
                         "  %y : Tensor = " +
                         kind + "(%x, %w, %b, %stride, %same, %dil, %groups)\n  return (%y)\n");
  Node *conv = lowerSingle(graph, kind);
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv),
            (Names{"%x", "%w", "%b", "%stride", "'same'", "%dil", "%groups"}));
  EXPECT_EQ(resolvedOverload(conv), "padding");
}

TEST_P(PlainConvTest, StringPaddingFromGraphInputBecomesConvPaddingOverload) {
  const std::string kind = GetParam();
  auto graph = parseBody("  %y : Tensor = " + kind +
                         "(%x, %w, %b, %stride, %mode, %dil, %groups)\n  return (%y)\n");
  Node *conv = lowerSingle(graph, kind);
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv), (Names{"%x", "%w", "%b", "%stride", "%mode", "%dil", "%groups"}));
  EXPECT_EQ(resolvedOverload(conv), "padding");
}

INSTANTIATE_TEST_SUITE_P(LowerConvolutions, PlainConvTest,
                         ::testing::Values("aten::conv1d", "aten::conv2d", "aten::conv3d"),
                         [](const auto &info) { return info.param.substr(6); });

// --- aten::conv_transpose1d / 2d / 3d -------------------------------------------------

class TransposeConvTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TransposeConvTest, BecomesConvWithTransposedTrueAndOutputPaddingAndDilationInPlace) {
  const std::string kind = GetParam();
  // conv_transpose: (input, weight, bias, stride, padding, output_padding, groups, dilation)
  auto graph = parseBody("  %y : Tensor = " + kind +
                         "(%x, %w, %b, %stride, %pad, %opad, %groups, %dil)\n  return (%y)\n");
  Node *conv = lowerSingle(graph, kind);
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv),
            (Names{"%x", "%w", "%b", "%stride", "%pad", "%dil", "True", "%opad", "%groups"}));
  EXPECT_EQ(resolvedOverload(conv), "");
}

INSTANTIATE_TEST_SUITE_P(LowerConvolutions, TransposeConvTest,
                         ::testing::Values("aten::conv_transpose1d", "aten::conv_transpose2d",
                                           "aten::conv_transpose3d"),
                         [](const auto &info) { return info.param.substr(6); });

// --- generic spellings ----------------------------------------------------------------

TEST(LowerConvolutions, Convolution13InputsPassesFirstNineThrough) {
  auto graph = parseBody(R"IR(
  %y : Tensor = aten::_convolution(%x, %w, %b, %stride, %pad, %dil, %transposed, %opad, %groups, %bench, %det, %cudnn, %tf32)
  return (%y)
)IR");
  Node *conv = lowerSingle(graph, "aten::_convolution");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv), (Names{"%x", "%w", "%b", "%stride", "%pad", "%dil", "%transposed",
                                         "%opad", "%groups"}));
  EXPECT_EQ(resolvedOverload(conv), "");
}

TEST(LowerConvolutions, DeprecatedConvolution12InputsPassesFirstNineThrough) {
  auto graph = parseBody(R"IR(
  %y : Tensor = aten::_convolution(%x, %w, %b, %stride, %pad, %dil, %transposed, %opad, %groups, %bench, %det, %cudnn)
  return (%y)
)IR");
  Node *conv = lowerSingle(graph, "aten::_convolution");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv), (Names{"%x", "%w", "%b", "%stride", "%pad", "%dil", "%transposed",
                                         "%opad", "%groups"}));
}

TEST(LowerConvolutions, AtenConvolutionPassesAllNineInputsThrough) {
  auto graph = parseBody(R"IR(
  %y : Tensor = aten::convolution(%x, %w, %b, %stride, %pad, %dil, %transposed, %opad, %groups)
  return (%y)
)IR");
  Node *conv = lowerSingle(graph, "aten::convolution");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv), (Names{"%x", "%w", "%b", "%stride", "%pad", "%dil", "%transposed",
                                         "%opad", "%groups"}));
  EXPECT_EQ(resolvedOverload(conv), "");
}

TEST(LowerConvolutions, ConvolutionModeBecomesConvPaddingOverload) {
  auto graph = parseBody(R"IR(
  %valid : str = prim::Constant[value="valid"]()
  %y : Tensor = aten::_convolution_mode(%x, %w, %b, %stride, %valid, %dil, %groups)
  return (%y)
)IR");
  Node *conv = lowerSingle(graph, "aten::_convolution_mode");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv),
            (Names{"%x", "%w", "%b", "%stride", "'valid'", "%dil", "%groups"}));
  EXPECT_EQ(resolvedOverload(conv), "padding");
}

// --- explicit library spellings -------------------------------------------------------

TEST(LowerConvolutions, CudnnConvolutionGetsNoneBiasAndReorderedPaddingStride) {
  // cudnn_convolution(self, weight, padding, stride, dilation, groups, benchmark, deterministic,
  // allow_tf32)
  auto graph = parseBody(R"IR(
  %y : Tensor = aten::cudnn_convolution(%x, %w, %pad, %stride, %dil, %groups, %bench, %det, %tf32)
  return (%y)
)IR");
  Node *conv = lowerSingle(graph, "aten::cudnn_convolution");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv),
            (Names{"%x", "%w", "None", "%stride", "%pad", "%dil", "False", "[]", "%groups"}));
  EXPECT_EQ(resolvedOverload(conv), "");
}

TEST(LowerConvolutions, CudnnConvolutionTransposeGetsNoneBiasAndTransposedTrue) {
  // cudnn_convolution_transpose(self, weight, padding, output_padding, stride, dilation, groups,
  // benchmark, deterministic, allow_tf32)
  auto graph = parseBody(R"IR(
  %y : Tensor = aten::cudnn_convolution_transpose(%x, %w, %pad, %opad, %stride, %dil, %groups, %bench, %det, %tf32)
  return (%y)
)IR");
  Node *conv = lowerSingle(graph, "aten::cudnn_convolution_transpose");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv),
            (Names{"%x", "%w", "None", "%stride", "%pad", "%dil", "True", "%opad", "%groups"}));
  EXPECT_EQ(resolvedOverload(conv), "");
}

class MiopenConvTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MiopenConvTest, KeepsBiasAndReordersPaddingStride) {
  // miopen_convolution / miopen_depthwise_convolution(self, weight, bias, padding, stride,
  // dilation, groups, benchmark, deterministic)
  const std::string kind = GetParam();
  auto graph = parseBody("  %y : Tensor = " + kind +
                         "(%x, %w, %b, %pad, %stride, %dil, %groups, %bench, %det)\n"
                         "  return (%y)\n");
  Node *conv = lowerSingle(graph, kind);
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv), kPlainResult);
  EXPECT_EQ(resolvedOverload(conv), "");
}

INSTANTIATE_TEST_SUITE_P(LowerConvolutions, MiopenConvTest,
                         ::testing::Values("aten::miopen_convolution",
                                           "aten::miopen_depthwise_convolution"),
                         [](const auto &info) { return info.param.substr(6); });

TEST(LowerConvolutions, MiopenConvolutionTransposeKeepsBiasAndGetsTransposedTrue) {
  // miopen_convolution_transpose(self, weight, bias, padding, output_padding, stride, dilation,
  // groups, benchmark, deterministic)
  auto graph = parseBody(R"IR(
  %y : Tensor = aten::miopen_convolution_transpose(%x, %w, %b, %pad, %opad, %stride, %dil, %groups, %bench, %det)
  return (%y)
)IR");
  Node *conv = lowerSingle(graph, "aten::miopen_convolution_transpose");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv),
            (Names{"%x", "%w", "%b", "%stride", "%pad", "%dil", "True", "%opad", "%groups"}));
}

TEST(LowerConvolutions, MkldnnConvolutionKeepsBiasAndReordersPaddingStride) {
  // mkldnn_convolution(self, weight, bias, padding, stride, dilation, groups)
  auto graph = parseBody(R"IR(
  %y : Tensor = aten::mkldnn_convolution(%x, %w, %b, %pad, %stride, %dil, %groups)
  return (%y)
)IR");
  Node *conv = lowerSingle(graph, "aten::mkldnn_convolution");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv), kPlainResult);
}

// --- fused epilogues ------------------------------------------------------------------

TEST(LowerConvolutions, CudnnConvolutionReluBecomesConvThenRelu) {
  auto graph = parseBody(R"IR(
  %y : Tensor = aten::cudnn_convolution_relu(%x, %w, %b, %stride, %pad, %dil, %groups)
  return (%y)
)IR");
  Node *conv = lowerSingle(graph, "aten::cudnn_convolution_relu");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv), kPlainResult);
  const auto relus = nodesOfKind(graph, "aten::relu");
  ASSERT_EQ(relus.size(), 1u);
  EXPECT_EQ(relus[0]->input(0), conv->output());
  EXPECT_EQ(graph->outputs()[0], relus[0]->output());
  EXPECT_EQ(relus[0]->output()->debugName(), "y");
  FileCheck().check("rdna1::conv(")->check_next("%y : Tensor = aten::relu(")->run(*graph);
}

TEST(LowerConvolutions, CudnnConvolutionAddReluBecomesConvAddWithAlphaThenRelu) {
  // cudnn_convolution_add_relu(self, weight, z, alpha, bias, stride, padding, dilation, groups)
  auto graph = parseBody(R"IR(
  %alpha : float = prim::Constant[value=2.5]()
  %y : Tensor = aten::cudnn_convolution_add_relu(%x, %w, %z, %alpha, %b, %stride, %pad, %dil, %groups)
  return (%y)
)IR");
  Node *conv = lowerSingle(graph, "aten::cudnn_convolution_add_relu");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(describeInputs(conv), kPlainResult);
  const auto adds = nodesOfKind(graph, "aten::add");
  const auto relus = nodesOfKind(graph, "aten::relu");
  ASSERT_EQ(adds.size(), 1u);
  ASSERT_EQ(relus.size(), 1u);
  ASSERT_EQ(adds[0]->inputs().size(), 3u);
  EXPECT_EQ(adds[0]->input(0), conv->output());
  EXPECT_EQ(describe(adds[0]->input(1)), "%z");
  EXPECT_EQ(describe(adds[0]->input(2)), "2.5");
  EXPECT_EQ(relus[0]->input(0), adds[0]->output());
  EXPECT_EQ(graph->outputs()[0], relus[0]->output());
  FileCheck()
      .check("rdna1::conv(")
      ->check("aten::add(")
      ->check("%y : Tensor = aten::relu(")
      ->run(*graph);
}

TEST(LowerConvolutions, CudnnConvolutionAddReluWithNoneAlphaAddsWithAlphaOne) {
  auto graph = parseBody(R"IR(
  %none : NoneType = prim::Constant()
  %y : Tensor = aten::cudnn_convolution_add_relu(%x, %w, %z, %none, %b, %stride, %pad, %dil, %groups)
  return (%y)
)IR");
  Node *conv = lowerSingle(graph, "aten::cudnn_convolution_add_relu");
  ASSERT_NE(conv, nullptr);
  const auto adds = nodesOfKind(graph, "aten::add");
  ASSERT_EQ(adds.size(), 1u);
  EXPECT_EQ(adds[0]->input(0), conv->output());
  EXPECT_EQ(describe(adds[0]->input(1)), "%z");
  ASSERT_EQ(adds[0]->inputs().size(), 3u);
  EXPECT_EQ(describe(adds[0]->input(2)), "1");
}

// --- nested blocks --------------------------------------------------------------------

TEST(LowerConvolutions, RewritesConvolutionsInBothBranchesOfIf) {
  auto graph = parseBody(R"IR(
  %y : Tensor = prim::If(%transposed)
    block0():
      %a : Tensor = aten::conv2d(%x, %w, %b, %stride, %pad, %dil, %groups)
      -> (%a)
    block1():
      %c : Tensor = aten::cudnn_convolution(%x, %w, %pad, %stride, %dil, %groups, %bench, %det, %tf32)
      -> (%c)
  return (%y)
)IR");
  const RewriteCounts counts = LowerConvolutions(graph);
  graph->lint();
  EXPECT_EQ(counts, (RewriteCounts{{"aten::conv2d", 1}, {"aten::cudnn_convolution", 1}}));
  const auto convs = nodesOfKind(graph, rdna1::ops::kConv);
  ASSERT_EQ(convs.size(), 2u);
  Node *ifNode = graph->outputs()[0]->node();
  ASSERT_EQ(ifNode->kind(), c10::prim::If);
  EXPECT_EQ(convs[0]->owningBlock(), ifNode->blocks()[0]);
  EXPECT_EQ(convs[1]->owningBlock(), ifNode->blocks()[1]);
  EXPECT_EQ(ifNode->blocks()[0]->outputs()[0], convs[0]->output());
  EXPECT_EQ(ifNode->blocks()[1]->outputs()[0], convs[1]->output());
  // The constants the cudnn spelling lacks are defined where the conv can see them.
  EXPECT_EQ(describe(convs[1]->input(2)), "None");
  FileCheck().check_not("aten::conv2d")->check_not("aten::cudnn_convolution")->run(*graph);
  FileCheck()
      .check("prim::If")
      ->check("block0")
      ->check("%a : Tensor = rdna1::conv(")
      ->check("block1")
      ->check("%c : Tensor = rdna1::conv(")
      ->run(*graph);
}

TEST(LowerConvolutions, RewritesConvolutionsInLoopBody) {
  auto graph = parseBody(R"IR(
  %n : int = prim::Constant[value=3]()
  %true : bool = prim::Constant[value=1]()
  %out : Tensor = prim::Loop(%n, %true, %x)
    block0(%i : int, %acc : Tensor):
      %next : Tensor = aten::conv_transpose3d(%acc, %w, %b, %stride, %pad, %opad, %groups, %dil)
      -> (%true, %next)
  return (%out)
)IR");
  const RewriteCounts counts = LowerConvolutions(graph);
  graph->lint();
  EXPECT_EQ(counts, (RewriteCounts{{"aten::conv_transpose3d", 1}}));
  const auto convs = nodesOfKind(graph, rdna1::ops::kConv);
  ASSERT_EQ(convs.size(), 1u);
  Node *loop = graph->outputs()[0]->node();
  ASSERT_EQ(loop->kind(), c10::prim::Loop);
  EXPECT_EQ(convs[0]->owningBlock(), loop->blocks()[0]);
  EXPECT_EQ(loop->blocks()[0]->outputs()[1], convs[0]->output());
  EXPECT_EQ(describeInputs(convs[0]),
            (Names{"%acc", "%w", "%b", "%stride", "%pad", "%dil", "True", "%opad", "%groups"}));
  FileCheck().check_not("aten::conv_transpose3d")->run(*graph);
}

TEST(LowerConvolutions, RewritesConvolutionsInIfNestedInLoop) {
  auto graph = parseBody(R"IR(
  %n : int = prim::Constant[value=2]()
  %true : bool = prim::Constant[value=1]()
  %out : Tensor = prim::Loop(%n, %true, %x)
    block0(%i : int, %acc : Tensor):
      %next : Tensor = prim::If(%transposed)
        block0():
          %a : Tensor = aten::conv1d(%acc, %w, %b, %stride, %pad, %dil, %groups)
          -> (%a)
        block1():
          -> (%acc)
      -> (%true, %next)
  return (%out)
)IR");
  EXPECT_EQ(LowerConvolutions(graph), (RewriteCounts{{"aten::conv1d", 1}}));
  graph->lint();
  FileCheck().check_not("aten::conv1d")->run(*graph);
  FileCheck().check_count("rdna1::conv(", 1, /*exactly=*/true)->run(*graph);
}

// --- counts, idempotence, untouched graphs --------------------------------------------

TEST(LowerConvolutions, CountsRewritesByOriginalKind) {
  auto graph = parseBody(R"IR(
  %a : Tensor = aten::conv2d(%x, %w, %b, %stride, %pad, %dil, %groups)
  %c : Tensor = aten::conv2d(%a, %w, %b, %stride, %pad, %dil, %groups)
  %d : Tensor = aten::conv_transpose2d(%c, %w, %b, %stride, %pad, %opad, %groups, %dil)
  %e : Tensor = aten::cudnn_convolution_relu(%d, %w, %b, %stride, %pad, %dil, %groups)
  %f : Tensor = aten::conv2d(%e, %w, %b, %stride, %mode, %dil, %groups)
  return (%f)
)IR");
  const RewriteCounts counts = LowerConvolutions(graph);
  EXPECT_EQ(counts, (RewriteCounts{{"aten::conv2d", 3},
                                   {"aten::conv_transpose2d", 1},
                                   {"aten::cudnn_convolution_relu", 1}}));
  EXPECT_EQ(rdna1::passes::total(counts), 5);
  EXPECT_EQ(nodesOfKind(graph, rdna1::ops::kConv).size(), 5u);
}

TEST(LowerConvolutions, SecondRunChangesNothing) {
  auto graph = parseBody(R"IR(
  %a : Tensor = aten::conv2d(%x, %w, %b, %stride, %pad, %dil, %groups)
  %c : Tensor = aten::cudnn_convolution(%a, %w, %pad, %stride, %dil, %groups, %bench, %det, %tf32)
  %d : Tensor = aten::_convolution_mode(%c, %w, %b, %stride, %mode, %dil, %groups)
  %e : Tensor = aten::cudnn_convolution_add_relu(%d, %w, %z, %groups, %b, %stride, %pad, %dil, %groups)
  %f : Tensor = prim::If(%transposed)
    block0():
      %g : Tensor = aten::conv_transpose1d(%e, %w, %b, %stride, %pad, %opad, %groups, %dil)
      -> (%g)
    block1():
      -> (%e)
  return (%f)
)IR");
  const RewriteCounts first = LowerConvolutions(graph);
  EXPECT_EQ(rdna1::passes::total(first), 5);
  const std::string afterFirst = graph->toString();
  const RewriteCounts second = LowerConvolutions(graph);
  EXPECT_TRUE(second.empty());
  EXPECT_EQ(graph->toString(), afterFirst);
}

TEST(LowerConvolutions, GraphWithoutConvolutionIsUntouched) {
  auto graph = parseBody(R"IR(
  %one : int = prim::Constant[value=1]()
  %a : Tensor = aten::add(%x, %w, %one)
  %c : Tensor = aten::relu(%a)
  %d : Tensor = aten::linear(%c, %w, %b)
  return (%d)
)IR");
  const std::string before = graph->toString();
  EXPECT_TRUE(LowerConvolutions(graph).empty());
  EXPECT_EQ(graph->toString(), before);
}

TEST(LowerConvolutions, LeavesConvolutionWithTooFewInputsAlone) {
  auto graph = parseBody(R"IR(
  %y : Tensor = aten::conv2d(%x, %w, %b, %stride, %pad)
  return (%y)
)IR");
  const std::string before = graph->toString();
  EXPECT_TRUE(LowerConvolutions(graph).empty());
  EXPECT_EQ(graph->toString(), before);
}

TEST(LowerConvolutions, ResultKeepsOriginalTypeAndDebugName) {
  auto graph = parse(R"IR(
graph(%x : Float(1, 3, 8, 8, strides=[192, 64, 8, 1], requires_grad=0, device=cpu),
      %w : Float(4, 3, 3, 3, strides=[27, 9, 3, 1], requires_grad=0, device=cpu)):
  %none : NoneType = prim::Constant()
  %one : int = prim::Constant[value=1]()
  %s : int[] = prim::ListConstruct(%one, %one)
  %features : Float(1, 4, 8, 8, strides=[256, 64, 8, 1], requires_grad=0, device=cpu) = aten::conv2d(%x, %w, %none, %s, %s, %s, %one)
  return (%features)
)IR");
  const c10::TypePtr originalType = graph->outputs()[0]->type();
  ASSERT_TRUE(originalType->cast<c10::TensorType>()->sizes().concrete_sizes().has_value());
  EXPECT_EQ(LowerConvolutions(graph), (RewriteCounts{{"aten::conv2d", 1}}));
  Node *conv = graph->outputs()[0]->node();
  ASSERT_EQ(conv->kind().toQualString(), std::string(rdna1::ops::kConv));
  EXPECT_EQ(conv->output()->debugName(), "features");
  EXPECT_EQ(*conv->output()->type(), *originalType);
  FileCheck()
      .check("%features : Float(1, 4, 8, 8")
      ->check_same("= rdna1::conv(%x, %w, %none")
      ->run(*graph);
}

TEST(LowerConvolutions, RedirectsEveryUseOfTheOriginalOutput) {
  auto graph = parseBody(R"IR(
  %one : int = prim::Constant[value=1]()
  %y : Tensor = aten::conv2d(%x, %w, %b, %stride, %pad, %dil, %groups)
  %r : Tensor = aten::relu(%y)
  %s : Tensor = aten::add(%y, %r, %one)
  %t : Tensor = prim::If(%transposed)
    block0():
      %u : Tensor = aten::sigmoid(%y)
      -> (%u)
    block1():
      -> (%y)
  return (%y, %s, %t)
)IR");
  EXPECT_EQ(LowerConvolutions(graph), (RewriteCounts{{"aten::conv2d", 1}}));
  graph->lint();
  const auto convs = nodesOfKind(graph, rdna1::ops::kConv);
  ASSERT_EQ(convs.size(), 1u);
  Value *result = convs[0]->output();
  // Five uses: relu, add, sigmoid in block0, block1's output, the graph output.
  EXPECT_EQ(result->uses().size(), 5u);
  EXPECT_EQ(graph->outputs()[0], result);
  EXPECT_EQ(nodesOfKind(graph, "aten::relu")[0]->input(0), result);
  EXPECT_EQ(nodesOfKind(graph, "aten::add")[0]->input(0), result);
  EXPECT_EQ(nodesOfKind(graph, "aten::sigmoid")[0]->input(0), result);
  EXPECT_EQ(graph->outputs()[2]->node()->blocks()[1]->outputs()[0], result);
}

TEST(LowerConvolutions, IsConvolutionSpellingKnowsEverySpellingAndNothingElse) {
  for (const char *kind : {"aten::conv1d", "aten::conv2d", "aten::conv3d", "aten::conv_transpose1d",
                           "aten::conv_transpose2d", "aten::conv_transpose3d", "aten::_convolution",
                           "aten::convolution", "aten::_convolution_mode",
                           "aten::cudnn_convolution", "aten::cudnn_convolution_transpose",
                           "aten::miopen_convolution", "aten::miopen_depthwise_convolution",
                           "aten::miopen_convolution_transpose", "aten::mkldnn_convolution",
                           "aten::cudnn_convolution_relu", "aten::cudnn_convolution_add_relu"})
    EXPECT_TRUE(rdna1::passes::isConvolutionSpelling(c10::Symbol::fromQualString(kind))) << kind;
  for (const char *kind : {"rdna1::conv", "rdna1::conv_backward", "aten::convolution_backward",
                           "aten::relu", "aten::batch_norm", "aten::linear"})
    EXPECT_FALSE(rdna1::passes::isConvolutionSpelling(c10::Symbol::fromQualString(kind))) << kind;
}

} // namespace
