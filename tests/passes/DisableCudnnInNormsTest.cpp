// IR tests of DisableCudnnInNorms: the cudnn_enabled argument of the norms
// becomes a constant false.
#include "DisableCudnnInNorms.h"

#include "IrTestSupport.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/ir/irparser.h>
#include <torch/csrc/jit/testing/file_check.h>

#include <memory>
#include <ostream>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using rdna1::passes::DisableCudnnInNorms;
using rdna1::passes::RewriteCounts;
using rdna1::testing::nodesOfKind;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
using torch::jit::testing::FileCheck;

std::shared_ptr<Graph> parse(const std::string &ir) {
  return rdna1::testing::parseNamed(ir);
}

Node *onlyNodeOfKind(const std::shared_ptr<Graph> &graph, const std::string &kind) {
  std::vector<Node *> out;
  rdna1::testing::collectKind(graph->block(), kind, out);
  EXPECT_EQ(out.size(), 1u) << kind << " in\n" << *graph;
  return out.empty() ? nullptr : out.front();
}

bool isConstantFalse(Value *value) {
  if (value->node()->kind() != c10::prim::Constant)
    return false;
  const auto constant = torch::jit::toIValue(value);
  return constant && constant->isBool() && !constant->toBool();
}

std::vector<Value *> inputsOf(Node *node) {
  return {node->inputs().begin(), node->inputs().end()};
}

struct NormCase {
  const char *kind;
  size_t flagIndex;
  const char *call; // the norm call, with %flag as its cudnn_enabled argument
};

void PrintTo(const NormCase &norm, std::ostream *out) {
  *out << norm.kind;
}

const NormCase kNorms[] = {
    {"aten::batch_norm", 8,
     "aten::batch_norm(%x, %w, %b, %mean, %var, %training, %momentum, %eps, %flag)"},
    {"aten::instance_norm", 8,
     "aten::instance_norm(%x, %w, %b, %mean, %var, %training, %momentum, %eps, %flag)"},
    {"aten::layer_norm", 5, "aten::layer_norm(%x, %shape, %w, %b, %eps, %flag)"},
    {"aten::group_norm", 5, "aten::group_norm(%x, %groups, %w, %b, %eps, %flag)"},
};

// A graph whose one norm reads %flag: a graph input when `flagDefinition` is
// empty, else the value that definition introduces.
std::shared_ptr<Graph> normGraph(const NormCase &norm, const std::string &flagDefinition) {
  const std::string flagInput = flagDefinition.empty() ? ", %flag : bool" : "";
  return parse(R"IR(
graph(%x : Tensor, %w : Tensor, %b : Tensor, %mean : Tensor, %var : Tensor, %training : bool,
      %momentum : float, %eps : float, %shape : int[], %groups : int)IR" +
               flagInput + "):\n" + flagDefinition + "  %y : Tensor = " + norm.call +
               "\n  return (%y)\n");
}

class DisableCudnnInNormsTest : public ::testing::TestWithParam<NormCase> {};

TEST_P(DisableCudnnInNormsTest, ReplacesConstantTrueFlagWithConstantFalse) {
  const NormCase &norm = GetParam();
  auto graph = normGraph(norm, "  %flag : bool = prim::Constant[value=1]()\n");
  Node *node = onlyNodeOfKind(graph, norm.kind);
  ASSERT_NE(node, nullptr);
  std::vector<Value *> before = inputsOf(node);

  EXPECT_EQ(DisableCudnnInNorms(graph), (RewriteCounts{{norm.kind, 1}}));
  graph->lint();

  ASSERT_EQ(node->inputs().size(), before.size());
  EXPECT_TRUE(isConstantFalse(node->input(norm.flagIndex))) << *graph;
  for (size_t i = 0; i < before.size(); ++i)
    if (i != norm.flagIndex)
      EXPECT_EQ(node->input(i), before[i]) << "input " << i << " changed";
  FileCheck()
      .check("%flag : bool = prim::Constant[value=1]()")
      ->check("bool = prim::Constant[value=0]()")
      ->check(norm.kind)
      ->check_not("%flag)")
      ->run(*graph);
}

TEST_P(DisableCudnnInNormsTest, ReplacesGraphInputFlagWithConstantFalse) {
  const NormCase &norm = GetParam();
  auto graph = normGraph(norm, "");
  Node *node = onlyNodeOfKind(graph, norm.kind);
  ASSERT_NE(node, nullptr);
  ASSERT_EQ(node->input(norm.flagIndex)->node()->kind(), c10::prim::Param);

  EXPECT_EQ(DisableCudnnInNorms(graph), (RewriteCounts{{norm.kind, 1}}));
  graph->lint();
  EXPECT_TRUE(isConstantFalse(node->input(norm.flagIndex))) << *graph;
  EXPECT_TRUE(graph->inputs().back()->uses().empty());
}

TEST_P(DisableCudnnInNormsTest, LeavesConstantFalseFlagAloneAndDoesNotCountIt) {
  const NormCase &norm = GetParam();
  auto graph = normGraph(norm, "  %flag : bool = prim::Constant[value=0]()\n");
  Node *node = onlyNodeOfKind(graph, norm.kind);
  ASSERT_NE(node, nullptr);
  Value *flag = node->input(norm.flagIndex);
  const std::string before = graph->toString();

  EXPECT_TRUE(DisableCudnnInNorms(graph).empty());
  EXPECT_EQ(node->input(norm.flagIndex), flag);
  EXPECT_EQ(graph->toString(), before);
}

TEST_P(DisableCudnnInNormsTest, SecondRunChangesNothing) {
  const NormCase &norm = GetParam();
  auto graph = normGraph(norm, "  %flag : bool = prim::Constant[value=1]()\n");
  EXPECT_EQ(rdna1::passes::total(DisableCudnnInNorms(graph)), 1);
  const std::string afterFirst = graph->toString();
  EXPECT_TRUE(DisableCudnnInNorms(graph).empty());
  EXPECT_EQ(graph->toString(), afterFirst);
}

INSTANTIATE_TEST_SUITE_P(DisableCudnnInNorms, DisableCudnnInNormsTest, ::testing::ValuesIn(kNorms),
                         [](const auto &info) { return std::string(info.param.kind).substr(6); });

TEST(DisableCudnnInNorms, DoesNotChangeOtherUsesOfTheFlag) {
  auto graph = parse(R"IR(
graph(%x : Tensor, %shape : int[], %eps : float):
  %flag : bool = prim::Constant[value=1]()
  %none : NoneType = prim::Constant()
  %y : Tensor = aten::layer_norm(%x, %shape, %none, %none, %eps, %flag)
  return (%y, %flag)
)IR");
  EXPECT_EQ(DisableCudnnInNorms(graph), (RewriteCounts{{"aten::layer_norm", 1}}));
  graph->lint();
  Value *returned = graph->outputs()[1];
  ASSERT_EQ(returned->node()->kind(), c10::prim::Constant);
  EXPECT_TRUE(torch::jit::toIValue(returned)->toBool());
  Node *norm = onlyNodeOfKind(graph, "aten::layer_norm");
  ASSERT_NE(norm, nullptr);
  EXPECT_TRUE(isConstantFalse(norm->input(5)));
}

TEST(DisableCudnnInNorms, RewritesNormsInsideIfAndLoopAndCountsByKind) {
  auto graph = parse(R"IR(
graph(%x : Tensor, %w : Tensor, %b : Tensor, %mean : Tensor, %var : Tensor, %training : bool,
      %momentum : float, %eps : float, %shape : int[], %groups : int, %cond : bool):
  %true : bool = prim::Constant[value=1]()
  %n : int = prim::Constant[value=2]()
  %a : Tensor = aten::batch_norm(%x, %w, %b, %mean, %var, %training, %momentum, %eps, %true)
  %c : Tensor = prim::If(%cond)
    block0():
      %d : Tensor = aten::group_norm(%a, %groups, %w, %b, %eps, %true)
      -> (%d)
    block1():
      %e : Tensor = aten::batch_norm(%a, %w, %b, %mean, %var, %training, %momentum, %eps, %cond)
      -> (%e)
  %out : Tensor = prim::Loop(%n, %true, %c)
    block0(%i : int, %acc : Tensor):
      %f : Tensor = aten::layer_norm(%acc, %shape, %w, %b, %eps, %true)
      %g : Tensor = aten::instance_norm(%f, %w, %b, %mean, %var, %training, %momentum, %eps, %true)
      -> (%true, %g)
  return (%out)
)IR");
  const RewriteCounts counts = DisableCudnnInNorms(graph);
  graph->lint();
  EXPECT_EQ(counts, (RewriteCounts{{"aten::batch_norm", 2},
                                   {"aten::group_norm", 1},
                                   {"aten::instance_norm", 1},
                                   {"aten::layer_norm", 1}}));
  for (const auto &[kind, index] :
       std::vector<std::pair<std::string, size_t>>{{"aten::batch_norm", 8},
                                                   {"aten::group_norm", 5},
                                                   {"aten::layer_norm", 5},
                                                   {"aten::instance_norm", 8}}) {
    std::vector<Node *> nodes;
    rdna1::testing::collectKind(graph->block(), kind, nodes);
    for (Node *node : nodes)
      EXPECT_TRUE(isConstantFalse(node->input(index))) << *node;
  }
  // The loop's condition still reads the constant true.
  Node *loop = graph->outputs()[0]->node();
  ASSERT_EQ(loop->kind(), c10::prim::Loop);
  EXPECT_TRUE(torch::jit::toIValue(loop->input(1))->toBool());
  EXPECT_TRUE(torch::jit::toIValue(loop->blocks()[0]->outputs()[0])->toBool());
}

TEST(DisableCudnnInNorms, LeavesOtherNodesAlone) {
  auto graph = parse(R"IR(
graph(%x : Tensor, %w : Tensor, %b : Tensor, %s : int[], %groups : int, %p : float):
  %true : bool = prim::Constant[value=1]()
  %y : Tensor = aten::conv2d(%x, %w, %b, %s, %s, %s, %groups)
  %z : Tensor = aten::dropout(%y, %p, %true)
  return (%z)
)IR");
  const std::string before = graph->toString();
  EXPECT_TRUE(DisableCudnnInNorms(graph).empty());
  EXPECT_EQ(graph->toString(), before);
}

} // namespace
