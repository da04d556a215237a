// IR tests of FuseConvBatchNorm: a convolution feeding only a batch norm
// becomes one rdna1::conv_batch_norm call; nn.BatchNorm's rank check reads the
// convolution's input and its training-mode size check moves after the call;
// pairs it cannot fuse stay as they were, with why.
#include "FuseConvBatchNorm.h"

#include "IrTestSupport.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/api/compilation_unit.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/testing/file_check.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

using rdna1::passes::FuseConvBatchNorm;
using rdna1::testing::nodesOfKind;
using torch::jit::testing::FileCheck;

// A scripted Conv2d + BatchNorm2d, inlined: the convolution, the norm's rank
// check, its batch count and F.batch_norm's size check in training, the norm.
// BETWEEN is replaced by a test's extra nodes after the convolution.
const std::string kConvThenNorm = R"IR(
graph(%x : Tensor, %w : Tensor, %b : Tensor?, %nw : Tensor, %nb : Tensor, %mean : Tensor,
      %var : Tensor, %training : bool, %counter : Tensor):
  %one : int = prim::Constant[value=1]()
  %zero : int = prim::Constant[value=0]()
  %four : int = prim::Constant[value=4]()
  %false : bool = prim::Constant[value=0]()
  %momentum : float = prim::Constant[value=0.1]()
  %eps : float = prim::Constant[value=1.0000000000000001e-05]()
  %message : str = prim::Constant[value="expected 4D input"]()
  %ones : int[] = prim::ListConstruct(%one, %one)
  %none : int[] = prim::ListConstruct()
  %y : Tensor = rdna1::conv(%x, %w, %b, %ones, %ones, %ones, %false, %none, %one)
  BETWEEN
  %rank : int = aten::dim(%y)
  %wrong : bool = aten::ne(%rank, %four)
   = prim::If(%wrong)
    block0():
       = prim::RaiseException(%message, %message)
      -> ()
    block1():
      -> ()
   = prim::If(%training)
    block0():
      %sizes : int[] = aten::size(%y)
      %batch : int = aten::__getitem__(%sizes, %zero)
      %single : bool = aten::eq(%batch, %one)
       = prim::If(%single)
        block0():
           = prim::RaiseException(%message, %message)
          -> ()
        block1():
          -> ()
      -> ()
    block1():
      -> ()
  %z : Tensor = rdna1::batch_norm(%y, %nw, %nb, %mean, %var, %training, %momentum, %eps, %false)
  return (%z)
)IR";

std::shared_ptr<torch::jit::Graph> parse(const std::string &between) {
  std::string ir = kConvThenNorm;
  ir.replace(ir.find("BETWEEN"), 7, between);
  return rdna1::testing::parseNamed(ir);
}

TEST(FuseConvBatchNorm, FusesTheConvolutionIntoItsNorm) {
  const auto graph = parse("");
  const auto fusion = FuseConvBatchNorm(graph);
  EXPECT_EQ(fusion.fused, 1);
  EXPECT_TRUE(fusion.declined.empty());
  graph->lint();
  FileCheck()
      .check("aten::dim(%x)")
      ->check("rdna1::conv_batch_norm(%x, %w, %b, %ones, %ones, %ones, %false, %none, %one, %nw, "
              "%nb, %mean, %var, %training, %momentum, %eps, %false)")
      ->check("prim::If(%training)")
      ->check("aten::size(%z)")
      ->check("return (%z)")
      ->run(*graph);
  FileCheck().check_not("rdna1::conv(")->check_not("rdna1::batch_norm(")->run(*graph);
}

TEST(FuseConvBatchNorm, TheBatchCountBetweenThemIsNoObstacle) {
  const auto graph = parse("%counted : Tensor = aten::add_(%counter, %one, %one)");
  // parseIR cannot say that %counter is a module's num_batches_tracked: build that.
  const auto unit = std::make_shared<torch::jit::CompilationUnit>();
  const auto norm = c10::ClassType::create("__torch__.BatchNorm2d", unit, /*is_module=*/true);
  norm->addAttribute("num_batches_tracked", c10::TensorType::get());
  torch::jit::Value *self = graph->insertInput(0, "self")->setType(norm);
  torch::jit::Node *add = nodesOfKind(graph, "aten::add_").front();
  torch::jit::Node *attr = graph->createGetAttr(self, "num_batches_tracked");
  attr->insertBefore(add);
  add->replaceInput(0, attr->output());
  EXPECT_EQ(FuseConvBatchNorm(graph).fused, 1) << *graph;
  graph->lint();
}

TEST(FuseConvBatchNorm, DeclinesWhereAnOpBetweenWritesAnOperand) {
  const auto graph = parse("%edited : Tensor = aten::mul_(%w, %four)");
  const auto fusion = FuseConvBatchNorm(graph);
  EXPECT_EQ(fusion.fused, 0);
  EXPECT_EQ(fusion.declined,
            std::vector<std::string>{"an op between them may write the convolution's operands x1"});
  FileCheck()
      .check("rdna1::conv(")
      ->check("aten::mul_")
      ->check("prim::If(%training)")
      ->check("aten::size(%y)")
      ->check("rdna1::batch_norm(%y")
      ->run(*graph);
}

TEST(FuseConvBatchNorm, DeclinesWhereTheOutputHasOtherUses) {
  const auto graph = parse("%other : Tensor = aten::relu(%y)");
  const auto fusion = FuseConvBatchNorm(graph);
  EXPECT_EQ(fusion.fused, 0);
  EXPECT_EQ(fusion.declined,
            std::vector<std::string>{"the convolution's output has other uses x1"});
  EXPECT_EQ(nodesOfKind(graph, "rdna1::batch_norm").size(), 1u);
}

TEST(FuseConvBatchNorm, DeclinesTransposedConvolutions) {
  std::string ir = kConvThenNorm;
  const std::string conv = "rdna1::conv(%x, %w, %b, %ones, %ones, %ones, %false,";
  ir.replace(ir.find(conv), conv.size(), "rdna1::conv(%x, %w, %b, %ones, %ones, %ones, %true,");
  ir.replace(ir.find("BETWEEN"), 7, "");
  ir.replace(ir.find("  %four"), 0, "  %true : bool = prim::Constant[value=1]()\n");
  const auto graph = rdna1::testing::parseNamed(ir);
  const auto fusion = FuseConvBatchNorm(graph);
  EXPECT_EQ(fusion.fused, 0);
  EXPECT_EQ(fusion.declined,
            std::vector<std::string>{
                "transposed convolution (its weight holds the output channels second) x1"});
}

TEST(FuseConvBatchNorm, RewritingAgainChangesNothing) {
  const auto graph = parse("");
  FuseConvBatchNorm(graph);
  std::ostringstream once;
  once << *graph;
  const auto again = FuseConvBatchNorm(graph);
  EXPECT_EQ(again.fused, 0);
  EXPECT_TRUE(again.declined.empty());
  std::ostringstream twice;
  twice << *graph;
  EXPECT_EQ(once.str(), twice.str());
}

} // namespace
