// SpecializeEvalPath on modules defined in TorchScript: the method splits into
// a copy for training and a folded copy for when no module trains, the guard
// reads every module's flag when the method runs, and what the module computes
// in either mode is unchanged.
#include "SpecializeEvalPath.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/testing/file_check.h>

#include <string>

namespace {

using rdna1::passes::EvalPath;
using rdna1::passes::SpecializeEvalPath;
using torch::jit::testing::FileCheck;

// A stochastic-depth-like block inside a module that also branches on its own flag.
torch::jit::Module makeModule() {
  torch::jit::Module inner("Inner");
  inner.register_attribute("training", c10::BoolType::get(), true);
  inner.define(R"JIT(
def forward(self, x):
    if self.training:
        return x * 10.0
    return x
)JIT");
  torch::jit::Module m("Outer");
  m.register_module("block", inner);
  m.register_attribute("training", c10::BoolType::get(), true);
  m.define(R"JIT(
def forward(self, x):
    y = self.block.forward(x + 1.0)
    if self.training:
        y = y * 3.0
    return y
)JIT");
  return m;
}

std::shared_ptr<torch::jit::Graph> inlinedForward(torch::jit::Module &m) {
  std::shared_ptr<torch::jit::Graph> graph = m.get_method("forward").graph();
  torch::jit::Inline(*graph);
  return graph;
}

double forwardOnOnes(torch::jit::Module &m) {
  return m.forward({at::ones({2})}).toTensor()[0].item<double>();
}

TEST(SpecializeEvalPath, SplitsOnEveryTrainingFlagAndFoldsTheEvalCopy) {
  torch::jit::Module m = makeModule();
  const auto graph = inlinedForward(m);
  const EvalPath path = SpecializeEvalPath(graph);
  ASSERT_NE(path.evalBlock, nullptr) << path.whyNot;
  EXPECT_EQ(path.flags, 2);
  // The guard reads both flags, then the training copy has both products and
  // the eval copy neither.
  FileCheck()
      .check_count("prim::GetAttr[name=\"training\"]", 2, /*exactly=*/true)
      ->check("aten::__or__(")
      ->check("prim::If(")
      ->check_count("aten::mul(", 2, /*exactly=*/true)
      ->check("block1():")
      ->check_not("aten::mul(")
      ->check("aten::add(")
      ->run(*graph);
  EXPECT_EQ(path.evalBlock, graph->outputs()[0]->node()->blocks()[1]);
}

TEST(SpecializeEvalPath, ComputesWhatTheModuleComputesInEveryMode) {
  torch::jit::Module m = makeModule();
  SpecializeEvalPath(inlinedForward(m));
  m.train();
  EXPECT_EQ(forwardOnOnes(m), 60.0); // (1 + 1) * 10 * 3
  m.eval();
  EXPECT_EQ(forwardOnOnes(m), 2.0);
  // One submodule training while its parent does not still takes the training copy.
  m.attr("block").toModule().train();
  EXPECT_EQ(forwardOnOnes(m), 20.0);
}

TEST(SpecializeEvalPath, FlagsThatOnlyFeedNormsLeaveTheGraphAlone) {
  torch::jit::Module m("Norm");
  m.register_attribute("training", c10::BoolType::get(), true);
  m.register_buffer("mean", at::zeros({2}));
  m.register_buffer("var", at::ones({2}));
  m.define(R"JIT(
def forward(self, x):
    return torch.batch_norm(x, None, None, self.mean, self.var, self.training, 0.1, 1e-5, False)
)JIT");
  const auto graph = inlinedForward(m);
  const std::string before = graph->toString();
  const EvalPath path = SpecializeEvalPath(graph);
  EXPECT_EQ(path.evalBlock, nullptr);
  EXPECT_EQ(path.whyNot, "training flags steer only norms");
  EXPECT_EQ(graph->toString(), before);
}

TEST(SpecializeEvalPath, MethodThatSetsTrainingItselfIsLeftAlone) {
  torch::jit::Module m("Setter");
  m.register_attribute("training", c10::BoolType::get(), true);
  m.define(R"JIT(
def forward(self, x):
    if self.training:
        x = x * 2.0
    self.training = False
    return x
)JIT");
  const auto graph = inlinedForward(m);
  const EvalPath path = SpecializeEvalPath(graph);
  EXPECT_EQ(path.evalBlock, nullptr);
  EXPECT_EQ(path.whyNot, "the method sets a training flag itself");
}

} // namespace
