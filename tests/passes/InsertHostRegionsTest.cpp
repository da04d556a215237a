// IR tests of InsertHostRegions: which nodes join a host region, where the
// batched transfers go, and which hazards keep nodes on the device.
#include "InsertHostRegions.h"
#include "SplitForEvalMode.h"

#include <rdna1/OpSchemas.h>

#include "IrTestSupport.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/api/compilation_unit.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/ir/irparser.h>
#include <torch/csrc/jit/testing/file_check.h>

#include <algorithm>
#include <c10/util/StringUtil.h>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using rdna1::passes::HasHostRegions;
using rdna1::passes::InsertHostRegions;
using rdna1::passes::RegionStats;
using rdna1::passes::SplitForEvalMode;
using rdna1::testing::nodesOfKind;
using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
using torch::jit::testing::FileCheck;

using Names = std::vector<std::string>;

// The module class of `%self`: parseIR in libtorch 1.13 knows no class types,
// so the IR spells it as a placeholder that parse() swaps for this type.
c10::ClassTypePtr moduleType() {
  static const auto cu = std::make_shared<torch::jit::CompilationUnit>();
  static const c10::ClassTypePtr type = [] {
    auto cls = c10::ClassType::create(c10::QualifiedName("__torch__.M"), cu, /*is_module=*/true);
    for (const char *name : {"w1", "b1", "w2", "b2", "w3", "b3", "gamma", "beta", "mean", "var",
                             "wl", "bl", "wm", "count"})
      cls->addAttribute(name, c10::TensorType::get());
    for (const char *name : {"bias", "omean", "ovar"})
      cls->addAttribute(name, c10::OptionalType::create(c10::TensorType::get()));
    cls->addAttribute("training", c10::BoolType::get());
    cu->register_type(cls);
    return cls;
  }();
  return type;
}

constexpr const char *kModuleTypeName = "__torch__.M";

// parseIR names only graph inputs; give every other value its name from the IR
// too, as a scripted graph would have. `%self : __torch__.M` becomes a module.
std::shared_ptr<Graph> parse(std::string ir) {
  bool hasSelf = false;
  for (size_t at = ir.find(kModuleTypeName); at != std::string::npos;
       at = ir.find(kModuleTypeName)) {
    ir.replace(at, std::string(kModuleTypeName).size(), "Tensor");
    hasSelf = true;
  }
  std::unordered_map<std::string, Value *> values;
  auto graph = rdna1::testing::parseNamed(ir, values);
  if (hasSelf)
    values.at("self")->setType(moduleType());
  return graph;
}

constexpr const char *kHeader = R"IR(
graph(%self : __torch__.M, %x : Tensor, %skip : Tensor, %training : bool, %rm : Tensor,
      %rv : Tensor, %flag : bool):
  %false : bool = prim::Constant[value=0]()
  %true : bool = prim::Constant[value=1]()
  %none : NoneType = prim::Constant()
  %zero : int = prim::Constant[value=0]()
  %one : int = prim::Constant[value=1]()
  %mom : float = prim::Constant[value=0.10000000000000001]()
  %eps : float = prim::Constant[value=1.0000000000000001e-05]()
  %ones : int[] = prim::ListConstruct(%one, %one)
  %zeros : int[] = prim::ListConstruct(%zero, %zero)
  %w1 : Tensor = prim::GetAttr[name="w1"](%self)
  %b1 : Tensor = prim::GetAttr[name="b1"](%self)
  %w2 : Tensor = prim::GetAttr[name="w2"](%self)
  %b2 : Tensor = prim::GetAttr[name="b2"](%self)
  %gamma : Tensor = prim::GetAttr[name="gamma"](%self)
  %beta : Tensor = prim::GetAttr[name="beta"](%self)
  %mean : Tensor = prim::GetAttr[name="mean"](%self)
  %var : Tensor = prim::GetAttr[name="var"](%self)
)IR";

std::shared_ptr<Graph> parseBody(const std::string &body) {
  return parse(kHeader + body);
}

// One rdna1::conv line: `%out = conv(%in, %w, %b)` with unit stride and no padding.
std::string conv(const std::string &out, const std::string &in, const std::string &w = "w1",
                 const std::string &b = "b1") {
  return "  %" + out + " : Tensor = rdna1::conv(%" + in + ", %" + w + ", %" + b +
         ", %ones, %zeros, %ones, %false, %zeros, %one)\n";
}

// One rdna1::batch_norm line with the given training flag and running statistics.
std::string norm(const std::string &out, const std::string &in, const std::string &training,
                 const std::string &mean = "mean", const std::string &var = "var") {
  return "  %" + out + " : Tensor = rdna1::batch_norm(%" + in + ", %gamma, %beta, %" + mean +
         ", %" + var + ", %" + training + ", %mom, %eps, %false)\n";
}

// Whether any logged decision contains `needle`.
bool logged(const RegionStats &stats, const std::string &needle) {
  return std::any_of(stats.decisions.begin(), stats.decisions.end(),
                     [&](const std::string &d) { return d.find(needle) != std::string::npos; });
}

RegionStats run(const std::shared_ptr<Graph> &graph) {
  const RegionStats stats = InsertHostRegions(graph);
  graph->lint();
  return stats;
}

// The only node of `kind` (nested blocks included), or nullptr after a failure.
Node *only(const std::shared_ptr<Graph> &graph, const std::string &kind) {
  const auto nodes = nodesOfKind(graph, kind);
  EXPECT_EQ(nodes.size(), 1u) << "expected one " << kind << " in\n" << *graph;
  return nodes.size() == 1 ? nodes.front() : nullptr;
}

// A value as the tests name it: "%name" for a named value, the literal for a constant.
std::string describe(Value *value) {
  if (value->node()->kind() == c10::prim::Constant) {
    const auto constant = torch::jit::toIValue(value);
    if (constant->isNone())
      return "None";
    if (constant->isBool())
      return constant->toBool() ? "True" : "False";
    std::ostringstream out;
    out << *constant;
    return out.str();
  }
  return "%" + value->debugName();
}

// The tensors a list call (rdna1::to_host, host_params, to_device, copy_back) takes.
Names listOperand(const Node *call, size_t index = 0) {
  Names names;
  Node *list = call->input(index)->node();
  EXPECT_EQ(list->kind(), c10::prim::ListConstruct) << *call;
  for (Value *v : list->inputs())
    names.push_back(describe(v));
  return names;
}

// The node that made `v`: the batched call behind a ListUnpack, else its own node.
std::string origin(const Value *v) {
  const Node *node = v->node();
  if (node->kind() == c10::prim::ListUnpack)
    node = node->input(0)->node();
  return node->kind().toQualString();
}

const std::string kToHost = rdna1::ops::kToHost;
const std::string kToDevice = rdna1::ops::kToDevice;
const std::string kHostParams = rdna1::ops::kHostParams;
const std::string kHostParam = rdna1::ops::kHostParam;
const std::string kCopyBack = rdna1::ops::kCopyBack;
const std::string kConv = rdna1::ops::kConv;

size_t count(const std::shared_ptr<Graph> &graph, const std::string &kind) {
  return nodesOfKind(graph, kind).size();
}

// --- one region for a chain ------------------------------------------------------------

TEST(InsertHostRegions, AutoModeChainEndingInConvIsOneRegionWithInlineAttributesHoisted) {
  // Attribute reads sit next to their use, as in an inlined scripted graph.
  auto graph = parseBody(conv("c1", "x") + norm("n1", "c1", "false") +
                         "  %r1 : Tensor = aten::relu_(%n1)\n" + conv("c2", "r1", "w2", "b2") +
                         R"IR(  %s : Tensor = aten::add(%c2, %skip, %one)
  %y : Tensor = aten::relu(%s)
  %w3 : Tensor = prim::GetAttr[name="w3"](%self)
  %b3 : Tensor = prim::GetAttr[name="b3"](%self)
)IR" + conv("c3", "y", "w3", "b3") +
                         "  return (%c3)\n");
  const RegionStats stats = run(graph);
  EXPECT_EQ(stats.regions, 1);
  EXPECT_EQ(stats.hostNodes, 7);
  ASSERT_EQ(count(graph, kToHost), 1u) << *graph;
  ASSERT_EQ(count(graph, kToDevice), 1u) << *graph;
  EXPECT_EQ(listOperand(only(graph, kToHost)), (Names{"%x", "%skip"}));
  const Names params = listOperand(only(graph, kHostParams));
  EXPECT_EQ(params.back(), "%b3");
  EXPECT_EQ(listOperand(only(graph, kToDevice)), (Names{"%c3"}));
  FileCheck()
      .check("%w3 : Tensor = prim::GetAttr")
      ->check(kHostParams + "(")
      ->check("%c3 : Tensor = rdna1::conv(%y, ")
      ->check(kToDevice + "(")
      ->run(*graph);
}

// --- Auto trims edges; Max keeps them --------------------------------------------------

TEST(InsertHostRegions, AutoModeTrailingReluRunsAfterToDevice) {
  auto graph = parseBody(conv("c1", "x") + conv("c2", "c1", "w2", "b2") + R"IR(
  %y : Tensor = aten::relu(%c2)
  return (%y)
)IR");
  EXPECT_EQ(run(graph).regions, 1);
  EXPECT_EQ(listOperand(only(graph, kToDevice)), (Names{"%c2"}));
  Node *relu = only(graph, "aten::relu");
  ASSERT_NE(relu, nullptr);
  EXPECT_EQ(origin(relu->input(0)), kToDevice);
  FileCheck().check(kToDevice + "(")->check("aten::relu(")->check("return (%y)")->run(*graph);
}

TEST(InsertHostRegions, AutoModeLeadingElementwiseOpStaysBeforeToHost) {
  auto graph = parseBody("  %p : Tensor = aten::mul(%x, %skip)\n" + conv("c1", "p") +
                         conv("c2", "c1", "w2", "b2") + "  return (%c2)\n");
  EXPECT_EQ(run(graph).regions, 1);
  EXPECT_EQ(listOperand(only(graph, kToHost)), (Names{"%p"}));
  FileCheck().check("%p : Tensor = aten::mul(%x, %skip)")->check(kToHost + "(")->run(*graph);
}

TEST(InsertHostRegions, AutoModeTrailingShrinkingPoolStaysInsideRegion) {
  for (const std::string pool : {"aten::max_pool2d(%r, %ones, %ones, %zeros, %ones, %false)",
                                 "aten::adaptive_avg_pool2d(%r, %ones)"}) {
    SCOPED_TRACE(pool);
    auto graph = parseBody(conv("c1", "x") + "  %r : Tensor = aten::relu(%c1)\n" +
                           "  %p : Tensor = " + pool + "\n  return (%p)\n");
    EXPECT_EQ(run(graph).regions, 1);
    EXPECT_EQ(listOperand(only(graph, kToDevice)), (Names{"%p"}));
    FileCheck()
        .check(kToHost + "(")
        ->check("rdna1::conv(")
        ->check("%r : Tensor = aten::relu(%c1)")
        ->check("%p : Tensor = aten::")
        ->check(kToDevice + "(")
        ->run(*graph);
  }
}

TEST(InsertHostRegions, AutoModeLeavesLinearAndMatmulOnDevice) {
  {
    SCOPED_TRACE("linear");
    auto graph = parseBody(conv("c1", "x") + R"IR(
  %neg : int = prim::Constant[value=-1]()
  %f : Tensor = aten::flatten(%c1, %one, %neg)
  %wl : Tensor = prim::GetAttr[name="wl"](%self)
  %bl : Tensor = prim::GetAttr[name="bl"](%self)
  %y : Tensor = aten::linear(%f, %wl, %bl)
  return (%y)
)IR");
    EXPECT_EQ(run(graph).regions, 1);
    Node *linear = only(graph, "aten::linear");
    ASSERT_NE(linear, nullptr);
    EXPECT_EQ(describe(linear->input(1)), "%wl");
    FileCheck().check(kToDevice + "(")->check("aten::linear(")->run(*graph);
  }
  {
    SCOPED_TRACE("matmul");
    auto graph = parseBody(conv("c1", "x") + R"IR(
  %wm : Tensor = prim::GetAttr[name="wm"](%self)
  %m : Tensor = aten::matmul(%c1, %wm)
)IR" + conv("c2", "m", "w2", "b2") +
                           "  return (%c2)\n");
    EXPECT_EQ(run(graph).regions, 2);
    Node *matmul = only(graph, "aten::matmul");
    ASSERT_NE(matmul, nullptr);
    EXPECT_EQ(origin(matmul->input(0)), kToDevice);
    EXPECT_EQ(describe(matmul->input(1)), "%wm");
    FileCheck()
        .check(kToDevice + "(")
        ->check("aten::matmul(")
        ->check(kToHost + "(")
        ->check("rdna1::conv(")
        ->run(*graph);
  }
}

// --- hazards -----------------------------------------------------------------------------

TEST(InsertHostRegions, InPlaceOpOnGraphInputIsNotHostedAndEndsRegion) {
  {
    SCOPED_TRACE("relu_ of a graph input the region read");
    auto graph = parseBody(conv("c1", "x") + R"IR(
  %s : Tensor = aten::add(%c1, %skip, %one)
  %k : Tensor = aten::relu_(%skip)
)IR" + conv("c2", "s", "w2", "b2") +
                           "  return (%c2)\n");
    EXPECT_EQ(run(graph).regions, 2);
    Node *relu = only(graph, "aten::relu_");
    ASSERT_NE(relu, nullptr);
    EXPECT_EQ(describe(relu->input(0)), "%skip");
    FileCheck()
        .check(kToDevice + "(")
        ->check("aten::relu_(%skip)")
        ->check(kToHost + "(")
        ->run(*graph);
  }
  {
    SCOPED_TRACE("add_ into a graph input");
    auto graph = parseBody(conv("c1", "x") + "  %a : Tensor = aten::add_(%skip, %c1, %one)\n" +
                           conv("c2", "a", "w2", "b2") + "  return (%c2)\n");
    EXPECT_EQ(run(graph).regions, 2);
    Node *add = only(graph, "aten::add_");
    ASSERT_NE(add, nullptr);
    EXPECT_EQ(describe(add->input(0)), "%skip");
    EXPECT_EQ(origin(add->input(1)), kToDevice);
  }
}

// A write to a graph input between region nodes must not be moved after a host
// copy of that input that a later region node reads.
TEST(InsertHostRegions, InPlaceOpOnGraphInputPrecedesTheHostCopyOfIt) {
  {
    auto graph = parseBody(conv("c1", "x") + R"IR(
  %k : Tensor = aten::relu_(%skip)
  %s : Tensor = aten::add(%c1, %skip, %one)
)IR" + conv("c2", "s", "w2", "b2") +
                           "  return (%c2)\n");
    run(graph);
    Node *relu = only(graph, "aten::relu_");
    ASSERT_NE(relu, nullptr);
    for (Node *toHost : nodesOfKind(graph, kToHost)) {
      const Names moved = listOperand(toHost);
      if (std::find(moved.begin(), moved.end(), "%skip") != moved.end())
        EXPECT_TRUE(toHost->isAfter(relu))
            << "%skip is copied to the host before aten::relu_ writes it:\n"
            << *graph;
    }
  }
}

TEST(InsertHostRegions, ViewOfRegionInputMutatedInPlaceIsNotHosted) {
  {
    auto graph = parseBody(conv("c1", "x") + R"IR(
  %neg : int = prim::Constant[value=-1]()
  %v : Tensor = aten::flatten(%x, %one, %neg)
)IR" + conv("c2", "c1", "w2", "b2") +
                           R"IR(  %m : Tensor = aten::relu_(%v)
  return (%c2, %x)
)IR");
    run(graph);
    Node *relu = only(graph, "aten::relu_");
    ASSERT_NE(relu, nullptr);
    // relu_ must write through a view of the device %x, not a copy of a host view.
    Node *view = relu->input(0)->node();
    if (view->kind().toQualString() != std::string("aten::flatten")) {
      ADD_FAILURE() << "aten::relu_ writes " << origin(relu->input(0))
                    << "'s copy of the view, not a view of %x:\n"
                    << *graph;
      return;
    }
    EXPECT_EQ(describe(view->input(0)), "%x") << *graph;
  }
}

// --- norms and dropout -------------------------------------------------------------------

TEST(InsertHostRegions, TrainingNormWithParamStatsJoinsRegionAndCopiesStatsBackUnderIf) {
  auto graph = parseBody(conv("c1", "x") + norm("n1", "c1", "training") +
                         conv("c2", "n1", "w2", "b2") + "  return (%c2)\n");
  EXPECT_EQ(run(graph).regions, 1);
  ASSERT_EQ(count(graph, kToHost), 1u) << *graph;
  Node *bn = only(graph, "rdna1::batch_norm");
  ASSERT_NE(bn, nullptr);
  EXPECT_EQ(describe(bn->input(0)), "%c1");
  EXPECT_EQ(origin(bn->input(3)), kHostParams);
  EXPECT_EQ(origin(bn->input(4)), kHostParams);

  Node *copyBack = only(graph, kCopyBack);
  ASSERT_NE(copyBack, nullptr);
  EXPECT_EQ(listOperand(copyBack, 0), (Names{"%mean", "%var"}));
  const Node *sources = copyBack->input(1)->node();
  ASSERT_EQ(sources->inputs().size(), 2u);
  EXPECT_EQ(sources->input(0), bn->input(3));
  EXPECT_EQ(sources->input(1), bn->input(4));
  Node *branch = copyBack->owningBlock()->owningNode();
  ASSERT_NE(branch, nullptr);
  EXPECT_EQ(branch->kind(), c10::prim::If);
  EXPECT_EQ(describe(branch->input(0)), "%training");
  EXPECT_EQ(branch->owningBlock(), graph->block());
  EXPECT_EQ(copyBack->owningBlock(), branch->blocks()[0]);
  EXPECT_TRUE(branch->isAfter(only(graph, kToDevice)));
  FileCheck()
      .check(kToHost + "(")
      ->check("rdna1::batch_norm(%c1, ")
      ->check(kToDevice + "(")
      ->check("prim::If(%training)")
      ->check(kCopyBack + "(")
      ->run(*graph);
}

TEST(InsertHostRegions, EvalNormJoinsRegionWithoutCopyBack) {
  auto graph = parseBody(conv("c1", "x") + norm("n1", "c1", "false") +
                         conv("c2", "n1", "w2", "b2") + "  return (%c2)\n");
  EXPECT_EQ(run(graph).regions, 1);
  EXPECT_EQ(count(graph, kToHost), 1u);
  EXPECT_EQ(count(graph, kCopyBack), 0u);
  EXPECT_EQ(count(graph, "prim::If"), 0u);
  Node *bn = only(graph, "rdna1::batch_norm");
  ASSERT_NE(bn, nullptr);
  EXPECT_EQ(describe(bn->input(0)), "%c1");
}

// Scripted BatchNorm declares running_mean/var as Optional[Tensor].
TEST(InsertHostRegions, TrainingNormWithOptionalParamStatsCopiesStatsBack) {
  auto graph = parseBody(R"IR(  %omean : Tensor? = prim::GetAttr[name="omean"](%self)
  %ovar : Tensor? = prim::GetAttr[name="ovar"](%self)
)IR" + conv("c1", "x") + norm("n1", "c1", "training", "omean", "ovar") +
                         conv("c2", "n1", "w2", "b2") + "  return (%c2)\n");
  ASSERT_NO_THROW(run(graph)) << *graph;
  Node *bn = only(graph, "rdna1::batch_norm");
  ASSERT_NE(bn, nullptr);
  if (origin(bn->input(0)) == kConv) { // hosted: the statistics must go back
    Node *copyBack = only(graph, kCopyBack);
    ASSERT_NE(copyBack, nullptr);
    EXPECT_EQ(listOperand(copyBack, 0), (Names{"%omean", "%ovar"}));
  }
}

TEST(InsertHostRegions, TrainingNormWithGraphInputStatsIsNotHosted) {
  auto graph = parseBody(conv("c1", "x") + norm("n1", "c1", "training", "rm", "rv") +
                         conv("c2", "n1", "w2", "b2") + "  return (%c2)\n");
  EXPECT_EQ(run(graph).regions, 2);
  Node *bn = only(graph, "rdna1::batch_norm");
  ASSERT_NE(bn, nullptr);
  EXPECT_EQ(origin(bn->input(0)), kToDevice);
  EXPECT_EQ(describe(bn->input(3)), "%rm");
  EXPECT_EQ(describe(bn->input(4)), "%rv");
  EXPECT_EQ(count(graph, kCopyBack), 0u);
}

TEST(InsertHostRegions, DropoutInTrainingStaysOnDevice) {
  auto graph = parseBody(conv("c1", "x") + R"IR(
  %p : float = prim::Constant[value=0.5]()
  %d : Tensor = aten::dropout(%c1, %p, %true)
)IR" + conv("c2", "d", "w2", "b2") +
                         "  return (%c2)\n");
  EXPECT_EQ(run(graph).regions, 2);
  Node *dropout = only(graph, "aten::dropout");
  ASSERT_NE(dropout, nullptr);
  EXPECT_EQ(origin(dropout->input(0)), kToDevice);
  FileCheck().check(kToDevice + "(")->check("aten::dropout(")->check(kToHost + "(")->run(*graph);
}

TEST(InsertHostRegions, DropoutInEvalJoinsRegion) {
  auto graph = parseBody(conv("c1", "x") + R"IR(
  %p : float = prim::Constant[value=0.5]()
  %d : Tensor = aten::dropout(%c1, %p, %false)
)IR" + conv("c2", "d", "w2", "b2") +
                         "  return (%c2)\n");
  EXPECT_EQ(run(graph).regions, 1);
  EXPECT_EQ(count(graph, kToHost), 1u);
  Node *dropout = only(graph, "aten::dropout");
  ASSERT_NE(dropout, nullptr);
  EXPECT_EQ(describe(dropout->input(0)), "%c1");
}

TEST(InsertHostRegions, DropoutSteeredByTrainingGetsAnEvalPathWithOneRegion) {
  auto graph = parseBody(conv("c1", "x") + R"IR(
  %t : bool = prim::GetAttr[name="training"](%self)
  %p : float = prim::Constant[value=0.5]()
  %d : Tensor = aten::dropout(%c1, %p, %t)
)IR" + conv("c2", "d", "w2", "b2") +
                         "  return (%c2)\n");
  std::string decision;
  EXPECT_NE(SplitForEvalMode(graph, decision), nullptr);
  const RegionStats stats = run(graph);
  EXPECT_EQ(decision, "eval path: a copy of the method for when none of its 1 training "
                      "flags is set, 1 to_host in eval mode instead of 2; training mode keeps 2");
  EXPECT_EQ(stats.regions, 3);
  Node *branch = only(graph, "prim::If");
  ASSERT_NE(branch, nullptr);
  EXPECT_EQ(branch->input(0)->node()->s(c10::attr::name), "training");
  // Training copy: the dropout stays on the device between two regions. Eval
  // copy: one region, the dropout (train False) inside it.
  FileCheck()
      .check("prim::If(")
      ->check(kToHost + "(")
      ->check(kToDevice + "(")
      ->check("aten::dropout(")
      ->check(kToHost + "(")
      ->check("block1():")
      ->check(kToHost + "(")
      ->check("aten::dropout(")
      ->check_not(kToHost + "(")
      ->check(kToDevice + "(")
      ->run(*graph);
}

TEST(InsertHostRegions, EvalPathIsNotKeptWhereItSavesNoCrossing) {
  auto graph = parseBody(conv("c1", "x") + R"IR(
  %t : bool = prim::GetAttr[name="training"](%self)
  %p : float = prim::Constant[value=0.5]()
  %d : Tensor = aten::dropout(%c1, %p, %t)
  return (%d)
)IR");
  std::string decision;
  EXPECT_EQ(SplitForEvalMode(graph, decision), nullptr);
  run(graph);
  EXPECT_EQ(decision, "no eval path: it would have 1 to_host in eval mode instead of 1");
  EXPECT_EQ(count(graph, "prim::If"), 0u);
  EXPECT_EQ(count(graph, kToHost), 1u);
}

// --- control flow and neutral nodes ------------------------------------------------------

TEST(InsertHostRegions, ConvsInsideIfGetOwnRegionAndNoRegionCrossesTheIf) {
  auto graph = parseBody(conv("c1", "x") + R"IR(
  %y : Tensor = prim::If(%flag)
    block0():
      %c2 : Tensor = rdna1::conv(%c1, %w2, %b2, %ones, %zeros, %ones, %false, %zeros, %one)
      -> (%c2)
    block1():
      -> (%c1)
)IR" + conv("c3", "y", "w2", "b2") +
                         "  return (%c3)\n");
  EXPECT_EQ(run(graph).regions, 3);
  const auto toHosts = nodesOfKind(graph, kToHost);
  const auto toDevices = nodesOfKind(graph, kToDevice);
  ASSERT_EQ(toHosts.size(), 3u) << *graph;
  ASSERT_EQ(toDevices.size(), 3u) << *graph;
  Node *branch = only(graph, "prim::If");
  ASSERT_NE(branch, nullptr);
  EXPECT_EQ(describe(branch->input(0)), "%flag");

  // Before the If: a region that ends before it.
  EXPECT_EQ(toHosts[0]->owningBlock(), graph->block());
  EXPECT_EQ(toDevices[0]->owningBlock(), graph->block());
  EXPECT_TRUE(toDevices[0]->isBefore(branch));
  // Inside the then-block: its own region, fed by the device value.
  Block *thenBlock = branch->blocks()[0];
  EXPECT_EQ(toHosts[1]->owningBlock(), thenBlock);
  EXPECT_EQ(toDevices[1]->owningBlock(), thenBlock);
  EXPECT_EQ(origin(toHosts[1]->input(0)->node()->input(0)), kToDevice);
  EXPECT_EQ(origin(thenBlock->outputs()[0]), kToDevice);
  EXPECT_EQ(origin(branch->blocks()[1]->outputs()[0]), kToDevice);
  // After the If: a region that starts after it.
  EXPECT_EQ(toHosts[2]->owningBlock(), graph->block());
  EXPECT_TRUE(toHosts[2]->isAfter(branch));
  EXPECT_EQ(listOperand(toHosts[2]), (Names{"%y"}));
}

// F.interpolate as TorchScript has it: a rank check around the upsample, the
// other branch raising. `returned` is what that branch hands back.
std::string interpolateBranch(const std::string &in, const std::string &returned) {
  return "  %four : int = prim::Constant[value=4]()\n"
         "  %msg : str = prim::Constant[value=\"rank\"]()\n"
         "  %sz : int[] = prim::ListConstruct(%four, %four)\n"
         "  %never : Tensor = prim::Uninitialized()\n"
         "  %rank : int = aten::dim(%" +
         in +
         ")\n"
         "  %is4 : bool = aten::eq(%rank, %four)\n"
         "  %up : Tensor = prim::If(%is4)\n"
         "    block0():\n"
         "      %u : Tensor = aten::upsample_nearest2d(%" +
         in +
         ", %sz, %none, %none)\n"
         "      -> (%u)\n"
         "    block1():\n"
         "      prim::RaiseException(%msg, %none)\n"
         "      -> (%" +
         returned + ")\n";
}

TEST(InsertHostRegions, BranchOfHostWorkBetweenConvsJoinsTheRegion) {
  auto graph = parseBody(conv("c1", "x") + interpolateBranch("c1", "never") +
                         conv("c2", "up", "w2", "b2") + "  return (%c2)\n");
  const RegionStats stats = run(graph);
  EXPECT_EQ(stats.regions, 1) << c10::Join("\n", stats.decisions);
  EXPECT_EQ(count(graph, kToHost), 1u) << *graph;
  Node *upsample = only(graph, "aten::upsample_nearest2d");
  ASSERT_NE(upsample, nullptr);
  EXPECT_EQ(describe(upsample->input(0)), "%c1"); // the host value, inside the region
  Node *second = nodesOfKind(graph, kConv).back();
  EXPECT_EQ(describe(second->input(0)), "%up");
  FileCheck()
      .check(kToHost + "(")
      ->check(kConv + "(")
      ->check("prim::If(")
      ->check("aten::upsample_nearest2d(")
      ->check("prim::RaiseException(")
      ->check(kConv + "(")
      ->check(kToDevice + "(")
      ->run(*graph);
}

TEST(InsertHostRegions, BranchReturningATensorItDidNotMakeEndsTheRegion) {
  auto graph = parseBody(conv("c1", "x") + interpolateBranch("c1", "c1") +
                         conv("c2", "up", "w2", "b2") + "  return (%c2)\n");
  const RegionStats stats = run(graph);
  EXPECT_TRUE(logged(stats, "a branch returns %c1, which it did not make"))
      << c10::Join("\n", stats.decisions);
  EXPECT_EQ(count(graph, kToHost), 2u) << *graph;
}

TEST(InsertHostRegions, BranchWithATrainingDropoutEndsTheRegion) {
  auto graph = parseBody(conv("c1", "x") + R"IR(
  %p : float = prim::Constant[value=0.5]()
  %y : Tensor = prim::If(%flag)
    block0():
      %d : Tensor = aten::dropout(%c1, %p, %training)
      -> (%d)
    block1():
      %r : Tensor = aten::relu(%c1)
      -> (%r)
)IR" + conv("c2", "y", "w2", "b2") +
                         "  return (%c2)\n");
  const RegionStats stats = run(graph);
  EXPECT_TRUE(logged(stats, "its branches hold %d = aten::dropout, which stays on the device: "
                            "dropout that may train"))
      << c10::Join("\n", stats.decisions);
  EXPECT_EQ(count(graph, kToHost), 2u) << *graph;
}

TEST(InsertHostRegions, MetadataReadsBetweenRegionNodesDoNotSplitRegion) {
  auto graph = parseBody(conv("c1", "x") + R"IR(
  %d : int = aten::dim(%c1)
  %four : int = prim::Constant[value=4]()
  %bad : bool = aten::ne(%d, %four)
  %msg : str = prim::Constant[value="expected 4-D input"]()
  prim::If(%bad)
    block0():
      prim::RaiseException(%msg, %none)
      -> ()
    block1():
      -> ()
  %n : int = aten::size(%c1, %one)
)IR" + conv("c2", "c1", "w2", "b2") +
                         "  return (%c2, %n)\n");
  const RegionStats stats = run(graph);
  EXPECT_EQ(stats.regions, 1);
  EXPECT_EQ(stats.hostNodes, 2);
  EXPECT_EQ(count(graph, kToHost), 1u);
  EXPECT_EQ(count(graph, kToDevice), 1u);
  FileCheck()
      .check(kToHost + "(")
      ->check("%c1 : Tensor = rdna1::conv(")
      ->check("aten::dim(%c1)")
      ->check("prim::If(%bad)")
      ->check("aten::size(%c1, %one)")
      ->check("%c2 : Tensor = rdna1::conv(%c1, ")
      ->check(kToDevice + "(")
      ->run(*graph);
}

// --- region outputs ----------------------------------------------------------------------

TEST(InsertHostRegions, OnlyValuesUsedAfterRegionGoToDevice) {
  auto graph = parseBody(conv("c1", "x") + "  %r1 : Tensor = aten::relu(%c1)\n" +
                         conv("c2", "r1", "w2", "b2") + conv("c3", "c2", "w1", "b1") +
                         "  return (%c3, %r1)\n");
  EXPECT_EQ(run(graph).regions, 1);
  EXPECT_EQ(listOperand(only(graph, kToDevice)), (Names{"%r1", "%c3"}));
  EXPECT_EQ(origin(graph->outputs()[0]), kToDevice);
  EXPECT_EQ(origin(graph->outputs()[1]), kToDevice);
  Node *relu = only(graph, "aten::relu");
  ASSERT_NE(relu, nullptr);
  // Inside the region the host values are read, not device copies.
  const auto convs = nodesOfKind(graph, kConv);
  ASSERT_EQ(convs.size(), 3u);
  EXPECT_EQ(convs[1]->input(0), relu->output());
  EXPECT_EQ(convs[2]->input(0), convs[1]->output());
  EXPECT_EQ(relu->input(0), convs[0]->output());
}

// --- idempotence and nothing to do -------------------------------------------------------

TEST(InsertHostRegions, SecondRunChangesNothingAndReportsNoRegions) {
  auto graph =
      parseBody(conv("c1", "x") + norm("n1", "c1", "training") + conv("c2", "n1", "w2", "b2") +
                "  %y : Tensor = aten::relu(%c2)\n" + "  return (%y)\n");
  EXPECT_FALSE(HasHostRegions(graph));
  EXPECT_EQ(run(graph).regions, 1);
  EXPECT_TRUE(HasHostRegions(graph));
  const std::string once = graph->toString();
  {
    const RegionStats again = run(graph);
    EXPECT_EQ(again.regions, 0);
    EXPECT_EQ(again.hostNodes, 0);
    EXPECT_EQ(graph->toString(), once);
  }
}

TEST(InsertHostRegions, GraphWithoutConvGetsNoRegion) {
  auto graph = parseBody(R"IR(
  %a : Tensor = aten::add(%x, %skip, %one)
  %r : Tensor = aten::relu(%a)
  %p : Tensor = aten::adaptive_avg_pool2d(%r, %ones)
  return (%p)
)IR");
  const std::string before = graph->toString();
  {
    EXPECT_EQ(run(graph).regions, 0);
    EXPECT_EQ(graph->toString(), before);
  }
  EXPECT_FALSE(HasHostRegions(graph));
}

TEST(InsertHostRegions, RegionWithoutActivationInputIsSkipped) {
  auto graph = parseBody(conv("c1", "w1", "w2", "b2") + "  return (%c1)\n");
  const std::string before = graph->toString();
  {
    EXPECT_EQ(run(graph).regions, 0);
    EXPECT_EQ(graph->toString(), before);
  }
  EXPECT_EQ(count(graph, kHostParams), 0u);
  EXPECT_FALSE(HasHostRegions(graph));
}

// --- optional parameters -----------------------------------------------------------------

TEST(InsertHostRegions, OptionalParamBiasGoesThroughHostParam) {
  auto graph = parseBody("  %bias : Tensor? = prim::GetAttr[name=\"bias\"](%self)\n" +
                         conv("c1", "x", "w1", "bias") + "  return (%c1)\n");
  EXPECT_EQ(run(graph).regions, 1);
  Node *hostParam = only(graph, kHostParam);
  ASSERT_NE(hostParam, nullptr);
  EXPECT_EQ(describe(hostParam->input(0)), "%bias");
  EXPECT_EQ(*hostParam->output()->type(), *c10::OptionalType::create(c10::TensorType::get()));
  Node *c1 = only(graph, kConv);
  ASSERT_NE(c1, nullptr);
  EXPECT_EQ(c1->input(2), hostParam->output());
  EXPECT_EQ(listOperand(only(graph, kHostParams)), (Names{"%w1"}));
  EXPECT_TRUE(hostParam->isBefore(c1));
}

// --- tensor lists ------------------------------------------------------------------------

// DenseNet's pattern: a list built, concatenated, appended to and concatenated
// again, all between convolutions, stays inside one region and never crosses.
TEST(InsertHostRegions, ListBuiltAppendedAndConcatenatedInsideStaysInOneRegion) {
  auto graph = parseBody(conv("c1", "x") + R"IR(
  %features : Tensor[] = prim::ListConstruct(%c1)
  %cat1 : Tensor = aten::cat(%features, %one)
)IR" + conv("c2", "cat1", "w2", "b2") +
                         R"IR(
  %grown : Tensor[] = aten::append(%features, %c2)
  %cat2 : Tensor = aten::cat(%features, %one)
)IR" + conv("c3", "cat2", "w1", "b1") +
                         "  return (%c3)\n");
  const RegionStats stats = run(graph);
  EXPECT_EQ(stats.regions, 1) << *graph;
  EXPECT_EQ(count(graph, kToHost), 1u);
  EXPECT_EQ(listOperand(only(graph, kToHost)), (Names{"%x"}));
  EXPECT_EQ(listOperand(only(graph, kToDevice)), (Names{"%c3"}));
  FileCheck()
      .check(kToHost + "(")
      ->check("%features : Tensor[] = prim::ListConstruct(%c1)")
      ->check("aten::cat(%features, %one)")
      ->check("aten::append(%features, %c2)")
      ->check("%cat2 : Tensor = aten::cat(%features, %one)")
      ->check("%c3 : Tensor = rdna1::conv(%cat2, ")
      ->check(kToDevice + "(")
      ->run(*graph);
}

// A list the region made but code after it reads cannot cross the bus: the
// region is cut before the list is built, and says so.
TEST(InsertHostRegions, ListUsedAfterRegionCutsRegionBeforeIt) {
  auto graph = parseBody(conv("c1", "x") + conv("c2", "c1", "w2", "b2") + R"IR(
  %parts : Tensor[] = prim::ListConstruct(%c2, %c1)
  %joined : Tensor = aten::cat(%parts, %one)
  %n : int = aten::len(%parts)
  %later : Tensor = aten::exp(%joined)
  %again : Tensor = aten::cat(%parts, %zero)
  return (%later, %again, %n)
)IR");
  const RegionStats stats = run(graph);
  EXPECT_EQ(stats.regions, 1) << *graph;
  EXPECT_TRUE(logged(stats, "region cut before %parts = prim::ListConstruct"))
      << c10::Join("\n", stats.decisions);
  FileCheck()
      .check("%c2 : Tensor = rdna1::conv(")
      ->check(kToDevice + "(")
      ->check("%parts : Tensor[] = prim::ListConstruct(")
      ->run(*graph);
}

// A list made before the region cannot be read inside it (it would cross as a whole).
TEST(InsertHostRegions, ListMadeOutsideIsNotReadInside) {
  auto graph = parseBody(R"IR(
  %outside : Tensor[] = aten::unbind(%skip, %zero)
)IR" + conv("c1", "x") + R"IR(
  %joined : Tensor = aten::cat(%outside, %one)
)IR" + conv("c2", "joined", "w2", "b2") +
                         "  return (%c1, %c2)\n");
  const RegionStats stats = run(graph);
  EXPECT_EQ(stats.regions, 2) << *graph;
  // The cat cannot join (its list was made outside) and stays on the device;
  // the next convolution then reads a value made after the region began.
  EXPECT_TRUE(logged(stats, "region ends before %c2 = rdna1::conv: it reads %joined, made after"))
      << c10::Join("\n", stats.decisions);
  FileCheck()
      .check("%c1 : Tensor = rdna1::conv(")
      ->check(kToDevice + "(")
      ->check("%joined : Tensor = aten::cat(%outside, %one)")
      ->check(kToHost + "(")
      ->run(*graph);
}

// ShuffleNet's pattern: chunk, one half through a convolution, concatenated
// with the other: the chunk's list is unpacked inside the region.
TEST(InsertHostRegions, ChunkUnpackedAndConcatenatedInsideStaysInOneRegion) {
  auto graph = parseBody(conv("c1", "x") + R"IR(
  %two : int = prim::Constant[value=2]()
  %halves : Tensor[] = aten::chunk(%c1, %two, %one)
  %h1 : Tensor, %h2 : Tensor = prim::ListUnpack(%halves)
)IR" + conv("c2", "h2", "w2", "b2") +
                         R"IR(
  %both : Tensor[] = prim::ListConstruct(%h1, %c2)
  %out : Tensor = aten::cat(%both, %one)
)IR" + conv("c3", "out", "w1", "b1") +
                         "  return (%c3)\n");
  const RegionStats stats = run(graph);
  EXPECT_EQ(stats.regions, 1) << *graph;
  EXPECT_EQ(count(graph, kToHost), 1u);
  EXPECT_EQ(listOperand(only(graph, kToDevice)), (Names{"%c3"}));
}

// The alias analysis makes every tensor put into a list a wildcard that any
// module attribute may alias; a write to a module buffer between region nodes
// (batch norm's num_batches_tracked.add_) must still not end the region.
TEST(InsertHostRegions, ModuleBufferWriteBetweenListNodesDoesNotSplitRegion) {
  auto graph = parseBody(conv("c1", "x") + R"IR(
  %features : Tensor[] = prim::ListConstruct(%c1)
  %cat1 : Tensor = aten::cat(%features, %one)
  prim::If(%training)
    block0():
      %count : Tensor = prim::GetAttr[name="count"](%self)
      %counted : Tensor = aten::add_(%count, %one, %one)
      -> ()
    block1():
      -> ()
)IR" + conv("c2", "cat1", "w2", "b2") +
                         "  return (%c2)\n");
  const RegionStats stats = run(graph);
  EXPECT_EQ(stats.regions, 1) << c10::Join("\n", stats.decisions) << *graph;
  EXPECT_EQ(count(graph, kToHost), 1u);
}

// A write to a region input between region nodes still ends the region, list or not: the
// convolution after the write reads a host copy taken after it.
TEST(InsertHostRegions, WriteToRegionInputBetweenListNodesEndsRegion) {
  auto graph = parseBody(conv("c1", "x") + R"IR(
  %features : Tensor[] = prim::ListConstruct(%c1, %skip)
  %cat1 : Tensor = aten::cat(%features, %one)
  %bumped : Tensor = aten::add_(%skip, %one, %one)
)IR" + conv("c2", "skip", "w2", "b2") +
                         conv("c3", "cat1", "w2", "b2") + "  return (%c2, %c3)\n");
  const RegionStats stats = run(graph);
  EXPECT_EQ(stats.regions, 2) << c10::Join("\n", stats.decisions) << *graph;
  FileCheck()
      .check("aten::cat(")
      ->check("aten::add_(%skip, %one, %one)")
      ->check(kToHost + "(")
      ->check("%c2 : Tensor = rdna1::conv(")
      ->run(*graph);
}

// Two results that share storage (a view and its base) would leave as two
// copies, and a later write through one would miss the other: no region.
TEST(InsertHostRegions, ResultsSharingStorageDropTheRegion) {
  auto graph = parseBody(conv("c1", "x") + R"IR(
  %v : Tensor = aten::unsqueeze(%c1, %one)
  %r : Tensor = aten::relu_(%v)
)IR" + conv("c2", "r", "w2", "b2") +
                         "  return (%c1, %r, %c2)\n");
  const RegionStats stats = run(graph);
  EXPECT_EQ(stats.regions, 0) << *graph;
  EXPECT_TRUE(logged(stats, "results alias its inputs or each other"))
      << c10::Join("\n", stats.decisions);
}

// A reshape shares its input's storage or copies it depending on strides, and
// host tensors are channels-last: with a write through it, the host's copy
// would miss the conv result the model changes. It stays on the device.
TEST(InsertHostRegions, WrittenReshapeStaysOnTheDevice) {
  auto graph = parseBody(conv("c1", "x") + R"IR(
  %v : Tensor = aten::reshape(%c1, %ones)
  %r : Tensor = aten::add_(%v, %one, %one)
)IR" + conv("c2", "c1", "w2", "b2") +
                         "  return (%c2, %r)\n");
  const RegionStats stats = run(graph);
  EXPECT_TRUE(logged(stats, "aten::reshape: it shares its input's storage or copies it by "
                            "strides, which differ on the host (channels-last), and something "
                            "writes to that storage"))
      << c10::Join("\n", stats.decisions);
  // The write happens on the device, and the second convolution sees it.
  FileCheck()
      .check(kToDevice + "(")
      ->check("aten::reshape(")
      ->check("aten::add_(%v")
      ->check(kToHost + "(")
      ->check("%c2 : Tensor = rdna1::conv(")
      ->run(*graph);
}

// With nothing writing to it, a reshape is hosted.
TEST(InsertHostRegions, UnwrittenReshapeIsHosted) {
  auto graph = parseBody(conv("c1", "x") + R"IR(
  %v : Tensor = aten::reshape(%c1, %ones)
  %r : Tensor = aten::relu(%v)
)IR" + conv("c2", "r", "w2", "b2") +
                         "  return (%c2)\n");
  const RegionStats stats = run(graph);
  EXPECT_EQ(stats.regions, 1) << c10::Join("\n", stats.decisions);
  FileCheck().check(kToHost + "(")->check("aten::reshape(")->check(kToDevice + "(")->run(*graph);
}

// --- decisions ---------------------------------------------------------------------------

TEST(InsertHostRegions, EveryEdgeTrimAndRegionEndIsLoggedWithItsReason) {
  auto graph = parseBody("  %r0 : Tensor = aten::relu(%x)\n" + conv("c1", "r0") +
                         "  %r1 : Tensor = aten::relu(%c1)\n" +
                         "  %l : Tensor = aten::linear(%r1, %w2, %b2)\n" + "  return (%l)\n");
  const RegionStats stats = run(graph);
  EXPECT_EQ(stats.regions, 1);
  const std::string all = c10::Join("\n", stats.decisions);
  EXPECT_TRUE(logged(stats, "region ends before %l = aten::linear: matrix products run on the "
                            "device"))
      << all;
  EXPECT_TRUE(logged(stats, "entry edge: %r0 = aten::relu runs on the device before the region"))
      << all;
  EXPECT_TRUE(logged(stats, "exit edge: %r1 = aten::relu runs on the device after the region"))
      << all;
}

// The cost model keeps a binary op whose inputs both come from the region on
// the host (one tensor crosses instead of two), and an upsampling at the entry
// (its smaller input crosses).
TEST(InsertHostRegions, CostModelKeepsTwoInputExitOpAndEntryUpsampling) {
  auto graph = parseBody(R"IR(
  %scale : float[] = prim::Constant[value=[2., 2.]]()
  %up : Tensor = aten::upsample_nearest2d(%x, %none, %scale)
)IR" + conv("c1", "up") + conv("c2", "c1", "w2", "b2") +
                         "  %s : Tensor = aten::add(%c1, %c2, %one)\n  return (%s)\n");
  const RegionStats stats = run(graph);
  EXPECT_EQ(stats.regions, 1);
  EXPECT_EQ(listOperand(only(graph, kToHost)), (Names{"%x"})) << *graph;
  EXPECT_EQ(listOperand(only(graph, kToDevice)), (Names{"%s"})) << *graph;
}

} // namespace
