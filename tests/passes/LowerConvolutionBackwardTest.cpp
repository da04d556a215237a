// IR tests of LowerConvolutionBackward: aten::convolution_backward becomes
// rdna1::conv_backward with the same operands, and its three results' uses move over.
#include "LowerConvolutionBackward.h"

#include <rdna1/OpSchemas.h>

#include "IrTestSupport.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/ir/irparser.h>
#include <torch/csrc/jit/testing/file_check.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using rdna1::passes::LowerConvolutionBackward;
using rdna1::passes::RewriteCounts;
using rdna1::testing::nodesOfKind;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
using torch::jit::testing::FileCheck;

struct Parsed {
  std::shared_ptr<Graph> graph;
  std::unordered_map<std::string, Value *> values;
};

Parsed parse(const std::string &ir) {
  Parsed parsed;
  parsed.graph = rdna1::testing::parseNamed(ir, parsed.values);
  return parsed;
}

std::vector<Value *> inputsOf(Node *node) {
  return {node->inputs().begin(), node->inputs().end()};
}

constexpr const char *kSingleBackward = R"IR(
graph(%grad : Tensor, %x : Tensor, %w : Tensor, %bias_sizes : int[]?, %stride : int[],
      %pad : int[], %dil : int[], %transposed : bool, %opad : int[], %groups : int,
      %mask : bool[]):
  %one : int = prim::Constant[value=1]()
  %gi : Tensor, %gw : Tensor, %gb : Tensor = aten::convolution_backward(%grad, %x, %w, %bias_sizes, %stride, %pad, %dil, %transposed, %opad, %groups, %mask)
  %sum : Tensor = aten::add(%gi, %gw, %one)
  %gb2 : Tensor = aten::mul(%gb, %gb)
  return (%gi, %gw, %gb, %sum, %gb2)
)IR";

TEST(LowerConvolutionBackward, BecomesRdna1ConvBackwardWithTheSameInputs) {
  Parsed parsed = parse(kSingleBackward);
  auto &graph = parsed.graph;
  const auto originals = nodesOfKind(graph, "aten::convolution_backward");
  ASSERT_EQ(originals.size(), 1u);
  const std::vector<Value *> originalInputs = inputsOf(originals[0]);
  ASSERT_EQ(originalInputs.size(), 11u);

  EXPECT_EQ(LowerConvolutionBackward(graph), (RewriteCounts{{"aten::convolution_backward", 1}}));
  graph->lint();

  const auto hosts = nodesOfKind(graph, rdna1::ops::kConvBackward);
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_EQ(inputsOf(hosts[0]), originalInputs);
  EXPECT_TRUE(nodesOfKind(graph, "aten::convolution_backward").empty());
  const c10::FunctionSchema *schema = hosts[0]->maybeSchema();
  ASSERT_NE(schema, nullptr) << "no registered rdna1::conv_backward schema matches " << *hosts[0];
  EXPECT_EQ(schema->name(), rdna1::ops::kConvBackward);
  FileCheck().check_not("aten::convolution_backward")->run(*graph);
  FileCheck()
      .check("%gi : Tensor, %gw : Tensor, %gb : Tensor = rdna1::conv_backward(%grad, %x, %w, "
             "%bias_sizes, %stride, %pad, %dil, %transposed, %opad, %groups, %mask)")
      ->run(*graph);
}

TEST(LowerConvolutionBackward, RedirectsUsesOfAllThreeOutputs) {
  Parsed parsed = parse(kSingleBackward);
  auto &graph = parsed.graph;
  LowerConvolutionBackward(graph);
  graph->lint();
  const auto hosts = nodesOfKind(graph, rdna1::ops::kConvBackward);
  ASSERT_EQ(hosts.size(), 1u);
  Node *host = hosts[0];
  ASSERT_EQ(host->outputs().size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ(graph->outputs()[i], host->output(i)) << "output " << i;
  Node *add = nodesOfKind(graph, "aten::add").at(0);
  EXPECT_EQ(add->input(0), host->output(0));
  EXPECT_EQ(add->input(1), host->output(1));
  Node *mul = nodesOfKind(graph, "aten::mul").at(0);
  EXPECT_EQ(mul->input(0), host->output(2));
  EXPECT_EQ(mul->input(1), host->output(2));
  EXPECT_EQ(host->output(0)->uses().size(), 2u);
  EXPECT_EQ(host->output(1)->uses().size(), 2u);
  EXPECT_EQ(host->output(2)->uses().size(), 3u);
}

TEST(LowerConvolutionBackward, OutputsKeepTypesAndDebugNames) {
  Parsed parsed = parse(R"IR(
graph(%grad : Float(1, 4, 8, 8, strides=[256, 64, 8, 1], requires_grad=0, device=cpu),
      %x : Float(1, 3, 8, 8, strides=[192, 64, 8, 1], requires_grad=0, device=cpu),
      %w : Float(4, 3, 3, 3, strides=[27, 9, 3, 1], requires_grad=0, device=cpu),
      %bias_sizes : int[]?, %s : int[], %transposed : bool, %opad : int[], %groups : int,
      %mask : bool[]):
  %d_input : Float(1, 3, 8, 8, strides=[192, 64, 8, 1], requires_grad=0, device=cpu), %d_weight : Float(4, 3, 3, 3, strides=[27, 9, 3, 1], requires_grad=0, device=cpu), %d_bias : Float(4, strides=[1], requires_grad=0, device=cpu) = aten::convolution_backward(%grad, %x, %w, %bias_sizes, %s, %s, %s, %transposed, %opad, %groups, %mask)
  return (%d_input, %d_weight, %d_bias)
)IR");
  auto &graph = parsed.graph;
  std::vector<c10::TypePtr> types;
  for (Value *output : graph->outputs())
    types.push_back(output->type());
  LowerConvolutionBackward(graph);
  const auto hosts = nodesOfKind(graph, rdna1::ops::kConvBackward);
  ASSERT_EQ(hosts.size(), 1u);
  const std::vector<std::string> names{"d_input", "d_weight", "d_bias"};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(hosts[0]->output(i)->debugName(), names[i]);
    EXPECT_EQ(*hosts[0]->output(i)->type(), *types[i]) << "output " << i;
  }
}

TEST(LowerConvolutionBackward, RewritesInsideIfAndLoopBlocks) {
  Parsed parsed = parse(R"IR(
graph(%grad : Tensor, %x : Tensor, %w : Tensor, %bias_sizes : int[]?, %stride : int[],
      %pad : int[], %dil : int[], %transposed : bool, %opad : int[], %groups : int,
      %mask : bool[], %cond : bool):
  %n : int = prim::Constant[value=2]()
  %true : bool = prim::Constant[value=1]()
  %r : Tensor = prim::If(%cond)
    block0():
      %a : Tensor, %b : Tensor, %c : Tensor = aten::convolution_backward(%grad, %x, %w, %bias_sizes, %stride, %pad, %dil, %transposed, %opad, %groups, %mask)
      -> (%b)
    block1():
      -> (%w)
  %out : Tensor = prim::Loop(%n, %true, %grad)
    block0(%i : int, %acc : Tensor):
      %d : Tensor, %e : Tensor, %f : Tensor = aten::convolution_backward(%acc, %x, %w, %bias_sizes, %stride, %pad, %dil, %transposed, %opad, %groups, %mask)
      -> (%true, %d)
  return (%r, %out)
)IR");
  auto &graph = parsed.graph;
  EXPECT_EQ(LowerConvolutionBackward(graph), (RewriteCounts{{"aten::convolution_backward", 2}}));
  graph->lint();
  const auto hosts = nodesOfKind(graph, rdna1::ops::kConvBackward);
  ASSERT_EQ(hosts.size(), 2u);
  Node *ifNode = graph->outputs()[0]->node();
  Node *loop = graph->outputs()[1]->node();
  ASSERT_EQ(ifNode->kind(), c10::prim::If);
  ASSERT_EQ(loop->kind(), c10::prim::Loop);
  EXPECT_EQ(hosts[0]->owningBlock(), ifNode->blocks()[0]);
  EXPECT_EQ(ifNode->blocks()[0]->outputs()[0], hosts[0]->output(1));
  EXPECT_EQ(hosts[1]->owningBlock(), loop->blocks()[0]);
  EXPECT_EQ(loop->blocks()[0]->outputs()[1], hosts[1]->output(0));
  EXPECT_EQ(hosts[1]->input(0), loop->blocks()[0]->inputs()[1]);
  FileCheck().check_not("aten::convolution_backward")->run(*graph);
}

TEST(LowerConvolutionBackward, CountsEveryRewrite) {
  Parsed parsed = parse(R"IR(
graph(%grad : Tensor, %x : Tensor, %w : Tensor, %bias_sizes : int[]?, %s : int[],
      %transposed : bool, %opad : int[], %groups : int, %mask : bool[]):
  %a : Tensor, %b : Tensor, %c : Tensor = aten::convolution_backward(%grad, %x, %w, %bias_sizes, %s, %s, %s, %transposed, %opad, %groups, %mask)
  %d : Tensor, %e : Tensor, %f : Tensor = aten::convolution_backward(%a, %x, %w, %bias_sizes, %s, %s, %s, %transposed, %opad, %groups, %mask)
  %g : Tensor, %h : Tensor, %i : Tensor = aten::convolution_backward(%d, %x, %w, %bias_sizes, %s, %s, %s, %transposed, %opad, %groups, %mask)
  return (%g, %b, %e, %h)
)IR");
  auto &graph = parsed.graph;
  const RewriteCounts counts = LowerConvolutionBackward(graph);
  EXPECT_EQ(counts, (RewriteCounts{{"aten::convolution_backward", 3}}));
  EXPECT_EQ(rdna1::passes::total(counts), 3);
  EXPECT_EQ(nodesOfKind(graph, rdna1::ops::kConvBackward).size(), 3u);
}

TEST(LowerConvolutionBackward, SecondRunChangesNothing) {
  Parsed parsed = parse(kSingleBackward);
  auto &graph = parsed.graph;
  EXPECT_EQ(rdna1::passes::total(LowerConvolutionBackward(graph)), 1);
  const std::string afterFirst = graph->toString();
  EXPECT_TRUE(LowerConvolutionBackward(graph).empty());
  EXPECT_EQ(graph->toString(), afterFirst);
}

TEST(LowerConvolutionBackward, LeavesForwardConvolutionsAndOtherNodesAlone) {
  Parsed parsed = parse(R"IR(
graph(%x : Tensor, %w : Tensor, %b : Tensor, %s : int[], %groups : int):
  %y : Tensor = aten::conv2d(%x, %w, %b, %s, %s, %s, %groups)
  %z : Tensor = aten::relu(%y)
  return (%z)
)IR");
  auto &graph = parsed.graph;
  const std::string before = graph->toString();
  EXPECT_TRUE(LowerConvolutionBackward(graph).empty());
  EXPECT_EQ(graph->toString(), before);
}

} // namespace
