// IR tests of LowerRecurrentLayers: aten::lstm, gru, rnn_tanh and rnn_relu
// (padded and packed overloads) become their rdna1:: twins with the same
// operands, resolving to the twin overload; what remains for the warning is
// only what still reaches cuDNN/MIOpen.
#include "LowerRecurrentLayers.h"
#include "FindDnnLibraryCalls.h"

#include <rdna1/OpSchemas.h>

#include "IrTestSupport.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/testing/file_check.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace {

using rdna1::passes::FindRemainingDnnUsers;
using rdna1::passes::LowerRecurrentLayers;
using rdna1::passes::RewriteCounts;
using rdna1::testing::nodesOfKind;
using rdna1::testing::parseNamed;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
using torch::jit::testing::FileCheck;

std::vector<Value *> inputsOf(Node *node) {
  return {node->inputs().begin(), node->inputs().end()};
}

constexpr const char *kPaddedLstm = R"IR(
graph(%x : Tensor, %h : Tensor, %c : Tensor, %w_ih : Tensor, %w_hh : Tensor):
  %hx : Tensor[] = prim::ListConstruct(%h, %c)
  %params : Tensor[] = prim::ListConstruct(%w_ih, %w_hh)
  %no : bool = prim::Constant[value=0]()
  %yes : bool = prim::Constant[value=1]()
  %layers : int = prim::Constant[value=1]()
  %p : float = prim::Constant[value=0.5]()
  %out : Tensor, %hn : Tensor, %cn : Tensor = aten::lstm(%x, %hx, %params, %no, %layers, %p, %yes, %no, %yes)
  %both : Tensor = aten::mul(%hn, %cn)
  return (%out, %both)
)IR";

TEST(LowerRecurrentLayers, PaddedLstmBecomesRdna1LstmWithTheSameInputs) {
  auto graph = parseNamed(kPaddedLstm);
  const auto originals = nodesOfKind(graph, "aten::lstm");
  ASSERT_EQ(originals.size(), 1u);
  const std::vector<Value *> originalInputs = inputsOf(originals[0]);

  EXPECT_EQ(LowerRecurrentLayers(graph), (RewriteCounts{{"aten::lstm", 1}}));
  graph->lint();

  const auto lowered = nodesOfKind(graph, rdna1::ops::kLstm);
  ASSERT_EQ(lowered.size(), 1u);
  EXPECT_EQ(inputsOf(lowered[0]), originalInputs);
  const c10::FunctionSchema *schema = lowered[0]->maybeSchema();
  ASSERT_NE(schema, nullptr) << "no registered rdna1::lstm schema matches " << *lowered[0];
  EXPECT_EQ(schema->name(), rdna1::ops::kLstm);
  EXPECT_EQ(schema->overload_name(), "");
  FileCheck()
      .check_not("aten::lstm")
      ->check("%out : Tensor, %hn : Tensor, %cn : Tensor = rdna1::lstm(%x, %hx, %params, %no, "
              "%layers, %p, %yes, %no, %yes)")
      ->check("aten::mul(%hn, %cn)")
      ->check("return (%out, %both)")
      ->run(*graph);
}

constexpr const char *kPackedLstm = R"IR(
graph(%data : Tensor, %sizes : Tensor, %h : Tensor, %c : Tensor, %w_ih : Tensor, %w_hh : Tensor):
  %hx : Tensor[] = prim::ListConstruct(%h, %c)
  %params : Tensor[] = prim::ListConstruct(%w_ih, %w_hh)
  %no : bool = prim::Constant[value=0]()
  %layers : int = prim::Constant[value=1]()
  %p : float = prim::Constant[value=0.0]()
  %out : Tensor, %hn : Tensor, %cn : Tensor = aten::lstm(%data, %sizes, %hx, %params, %no, %layers, %p, %no, %no)
  return (%out, %hn, %cn)
)IR";

TEST(LowerRecurrentLayers, PackedLstmResolvesToTheDataOverload) {
  auto graph = parseNamed(kPackedLstm);
  ASSERT_EQ(nodesOfKind(graph, "aten::lstm").at(0)->maybeSchema()->overload_name(), "data");

  EXPECT_EQ(LowerRecurrentLayers(graph), (RewriteCounts{{"aten::lstm", 1}}));
  graph->lint();

  const auto lowered = nodesOfKind(graph, rdna1::ops::kLstm);
  ASSERT_EQ(lowered.size(), 1u);
  const c10::FunctionSchema *schema = lowered[0]->maybeSchema();
  ASSERT_NE(schema, nullptr) << "no registered rdna1::lstm schema matches " << *lowered[0];
  EXPECT_EQ(schema->overload_name(), "data");
  FileCheck()
      .check("%out : Tensor, %hn : Tensor, %cn : Tensor = rdna1::lstm(%data, %sizes, %hx, "
             "%params, %no, %layers, %p, %no, %no)")
      ->check("return (%out, %hn, %cn)")
      ->run(*graph);
}

// Every single-state kind in both overloads, one of each inside a branch.
constexpr const char *kSingleStateLayers = R"IR(
graph(%x : Tensor, %data : Tensor, %sizes : Tensor, %h : Tensor, %w_ih : Tensor, %w_hh : Tensor, %cond : bool):
  %params : Tensor[] = prim::ListConstruct(%w_ih, %w_hh)
  %no : bool = prim::Constant[value=0]()
  %layers : int = prim::Constant[value=1]()
  %p : float = prim::Constant[value=0.0]()
  %g : Tensor, %gh : Tensor = aten::gru(%x, %h, %params, %no, %layers, %p, %no, %no, %no)
  %gd : Tensor, %gdh : Tensor = aten::gru(%data, %sizes, %h, %params, %no, %layers, %p, %no, %no)
  %t : Tensor, %th : Tensor = aten::rnn_tanh(%x, %h, %params, %no, %layers, %p, %no, %no, %no)
  %r : Tensor = prim::If(%cond)
    block0():
      %rd : Tensor, %rdh : Tensor = aten::rnn_relu(%data, %sizes, %h, %params, %no, %layers, %p, %no, %no)
      -> (%rd)
    block1():
      %rp : Tensor, %rph : Tensor = aten::rnn_relu(%x, %h, %params, %no, %layers, %p, %no, %no, %no)
      -> (%rp)
  %td : Tensor, %tdh : Tensor = aten::rnn_tanh(%data, %sizes, %h, %params, %no, %layers, %p, %no, %no)
  return (%g, %gh, %gd, %gdh, %t, %th, %r, %td, %tdh)
)IR";

TEST(LowerRecurrentLayers, GruAndPlainRnnsInBothOverloadsAndInBranches) {
  auto graph = parseNamed(kSingleStateLayers);
  EXPECT_EQ(LowerRecurrentLayers(graph),
            (RewriteCounts{{"aten::gru", 2}, {"aten::rnn_tanh", 2}, {"aten::rnn_relu", 2}}));
  graph->lint();

  for (const char *kind : {rdna1::ops::kGru, rdna1::ops::kRnnTanh, rdna1::ops::kRnnRelu}) {
    const auto lowered = nodesOfKind(graph, kind);
    ASSERT_EQ(lowered.size(), 2u) << kind;
    std::vector<std::string> overloads;
    for (Node *node : lowered) {
      const c10::FunctionSchema *schema = node->maybeSchema();
      ASSERT_NE(schema, nullptr) << "no registered schema matches " << *node;
      overloads.push_back(schema->overload_name());
    }
    std::sort(overloads.begin(), overloads.end());
    EXPECT_EQ(overloads, (std::vector<std::string>{"", "data"})) << kind;
  }
  FileCheck().check_not("aten::gru")->check_not("aten::rnn_")->run(*graph);
  FileCheck()
      .check("%g : Tensor, %gh : Tensor = rdna1::gru(%x, %h, %params")
      ->check("%gd : Tensor, %gdh : Tensor = rdna1::gru(%data, %sizes, %h, %params")
      ->check("rdna1::rnn_tanh(%x, %h,")
      ->check("prim::If(%cond)")
      ->check("rdna1::rnn_relu(%data, %sizes, %h,")
      ->check("rdna1::rnn_relu(%x, %h,")
      ->check("rdna1::rnn_tanh(%data, %sizes, %h,")
      ->run(*graph);
  EXPECT_TRUE(FindRemainingDnnUsers(graph).empty());
}

TEST(LowerRecurrentLayers, ASecondRunChangesNothing) {
  auto graph = parseNamed(kPaddedLstm);
  LowerRecurrentLayers(graph);
  const std::string once = graph->toString();
  EXPECT_TRUE(LowerRecurrentLayers(graph).empty());
  EXPECT_EQ(graph->toString(), once);
}

constexpr const char *kLstmAndGridSample = R"IR(
graph(%x : Tensor, %h : Tensor, %c : Tensor, %w_ih : Tensor, %w_hh : Tensor, %grid : Tensor):
  %hx : Tensor[] = prim::ListConstruct(%h, %c)
  %params : Tensor[] = prim::ListConstruct(%w_ih, %w_hh)
  %no : bool = prim::Constant[value=0]()
  %zero : int = prim::Constant[value=0]()
  %layers : int = prim::Constant[value=1]()
  %p : float = prim::Constant[value=0.0]()
  %out : Tensor, %hn : Tensor, %cn : Tensor = aten::lstm(%x, %hx, %params, %no, %layers, %p, %no, %no, %no)
  %sampled : Tensor = aten::grid_sampler(%out, %grid, %zero, %zero, %no)
  return (%sampled)
)IR";

TEST(LowerRecurrentLayers, OnlyWhatStillReachesTheDnnLibraryRemainsToWarnAbout) {
  auto graph = parseNamed(kLstmAndGridSample);
  EXPECT_EQ(FindRemainingDnnUsers(graph),
            (std::vector<std::string>{"aten::lstm", "aten::grid_sampler"}));
  LowerRecurrentLayers(graph);
  EXPECT_EQ(FindRemainingDnnUsers(graph), (std::vector<std::string>{"aten::grid_sampler"}));
}

} // namespace
