// IR tests of ReshapeInsteadOfView: views that nothing writes to become
// reshapes (hostable on channels-last host tensors); views with a writer, to
// the view or to what it views, stay views.
#include "ReshapeInsteadOfView.h"

#include "IrTestSupport.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/testing/file_check.h>

#include <memory>
#include <string>

namespace {

using rdna1::passes::ReshapeInsteadOfView;
using torch::jit::Graph;
using torch::jit::testing::FileCheck;

std::shared_ptr<Graph> parse(const std::string &body) {
  return rdna1::testing::parseNamed(R"IR(
graph(%x : Tensor, %w : Tensor):
  %none : NoneType = prim::Constant()
  %one : int = prim::Constant[value=1]()
  %minus : int = prim::Constant[value=-1]()
  %n : int = aten::size(%x, %one)
  %shape : int[] = prim::ListConstruct(%n, %minus)
  %c : Tensor = aten::conv2d(%x, %w, %none, %shape, %shape, %shape, %one)
)IR" + body);
}

// The flatten of a feature map, as the classic CIFAR-10 tutorial writes it.
TEST(ReshapeInsteadOfView, UnwrittenViewBecomesReshape) {
  auto graph = parse(R"IR(
  %v : Tensor = aten::view(%c, %shape)
  %r : Tensor = aten::relu(%v)
  return (%r)
)IR");
  EXPECT_EQ(ReshapeInsteadOfView(graph), 1);
  FileCheck()
      .check_not("aten::view")
      ->check("aten::reshape(%c, %shape)")
      ->check("aten::relu(")
      ->run(*graph);
}

TEST(ReshapeInsteadOfView, ViewWrittenInPlaceStaysAView) {
  auto graph = parse(R"IR(
  %v : Tensor = aten::view(%c, %shape)
  %r : Tensor = aten::relu_(%v)
  return (%c)
)IR");
  EXPECT_EQ(ReshapeInsteadOfView(graph), 0);
  FileCheck().check("aten::view(%c, %shape)")->check_not("aten::reshape")->run(*graph);
}

TEST(ReshapeInsteadOfView, ViewOfAWrittenTensorStaysAView) {
  auto graph = parse(R"IR(
  %v : Tensor = aten::view(%c, %shape)
  %bumped : Tensor = aten::add_(%c, %c, %one)
  return (%v)
)IR");
  EXPECT_EQ(ReshapeInsteadOfView(graph), 0);
  FileCheck().check("aten::view(%c, %shape)")->run(*graph);
}

// ShuffleNet's shape: the view is chunked, and one part is concatenated
// with a tensor that relu_ wrote. Sharing a list with a written tensor does
// not make the view written (the alias analysis of TorchScript would say it
// is, as it puts every listed tensor in one set).
TEST(ReshapeInsteadOfView, WrittenNeighbourInAListDoesNotCount) {
  auto graph = parse(R"IR(
  %two : int = prim::Constant[value=2]()
  %v : Tensor = aten::view(%c, %shape)
  %parts : Tensor[] = aten::chunk(%v, %two, %one)
  %a : Tensor, %b : Tensor = prim::ListUnpack(%parts)
  %r : Tensor = aten::relu(%b)
  %written : Tensor = aten::relu_(%r)
  %both : Tensor[] = prim::ListConstruct(%a, %written)
  %out : Tensor = aten::cat(%both, %one)
  return (%out)
)IR");
  EXPECT_EQ(ReshapeInsteadOfView(graph), 1);
  FileCheck().check_not("aten::view")->check("aten::reshape(%c, %shape)")->run(*graph);
}

TEST(ReshapeInsteadOfView, WriteThroughAChunkOfTheViewKeepsIt) {
  auto graph = parse(R"IR(
  %two : int = prim::Constant[value=2]()
  %v : Tensor = aten::view(%c, %shape)
  %parts : Tensor[] = aten::chunk(%v, %two, %one)
  %a : Tensor, %b : Tensor = prim::ListUnpack(%parts)
  %written : Tensor = aten::relu_(%b)
  return (%v)
)IR");
  EXPECT_EQ(ReshapeInsteadOfView(graph), 0);
  FileCheck().check("aten::view(%c, %shape)")->run(*graph);
}

// A view of a module attribute or an argument: writers outside the graph are unknown.
TEST(ReshapeInsteadOfView, ViewOfAnArgumentStaysAView) {
  auto graph = parse(R"IR(
  %v : Tensor = aten::view(%x, %shape)
  return (%v)
)IR");
  EXPECT_EQ(ReshapeInsteadOfView(graph), 0);
}

// aten::view(Tensor, ScalarType) reinterprets bytes: not a reshape.
TEST(ReshapeInsteadOfView, DtypeViewIsLeftAlone) {
  auto graph = parse(R"IR(
  %dtype : int = prim::Constant[value=3]()
  %v : Tensor = aten::view(%c, %dtype)
  return (%v)
)IR");
  EXPECT_EQ(ReshapeInsteadOfView(graph), 0);
  FileCheck().check("aten::view(%c, %dtype)")->run(*graph);
}

} // namespace
