// Tests of the eval path as the rewriter applies it to a module: forward split
// into a training and an eval copy, each outlined into a method of its own
// (OutlineEvalPath.h), computes what the original does in either mode, for any
// submodule's flag, after saving and loading, and a second rewrite leaves it be.
#include "OutlineEvalPath.h"
#include "RewriteModule.h"

#include <rdna1/OpSchemas.h>

#include <gtest/gtest.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/csrc/jit/testing/file_check.h>
#include <torch/script.h>

#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>

namespace {

using rdna1::passes::ModuleReport;
using rdna1::passes::RewriteModule;
using torch::jit::CompilationUnit;
using torch::jit::Module;
using torch::jit::testing::FileCheck;

const std::string kToHost = rdna1::ops::kToHost;

// A module as Python's nn.Module makes it: with its `training` flag.
Module makeModule(const std::string &name, const std::shared_ptr<CompilationUnit> &cu) {
  Module module(name, cu);
  module.register_attribute("training", c10::BoolType::get(), true);
  return module;
}

// conv -> dropout steered by a submodule's `training` -> conv: one region in
// eval mode, two in training mode (the dropout draws on the device).
Module makeDropNet() {
  auto cu = std::make_shared<CompilationUnit>();
  Module drop = makeModule("Drop", cu);
  drop.define(R"JIT(
def forward(self, x):
    return torch.dropout(x, 0.5, self.training)
)JIT");
  Module net = makeModule("DropNet", cu);
  torch::manual_seed(0);
  net.register_parameter("weight", torch::randn({3, 3, 3, 3}), false);
  net.register_module("drop", drop);
  net.define(R"JIT(
def forward(self, x):
    y = torch.conv2d(x, self.weight, None, [1, 1], [1, 1], [1, 1], 1).relu()
    return torch.conv2d(self.drop.forward(y), self.weight, None, [1, 1], [1, 1], [1, 1], 1)
)JIT");
  net.eval();
  return net;
}

size_t countToHost(const Module &module, const std::string &method) {
  const std::string ir = module.get_method(method).graph()->toString();
  size_t count = 0;
  for (size_t at = ir.find(kToHost + "("); at != std::string::npos;
       at = ir.find(kToHost + "(", at + 1))
    ++count;
  return count;
}

at::Tensor runSeeded(Module &module, const at::Tensor &x) {
  torch::manual_seed(7);
  return module.forward({x}).toTensor();
}

TEST(OutlineEvalPath, ForwardKeepsTheGuardAndOneCallPerCopy) {
  Module net = makeDropNet();
  const ModuleReport report = RewriteModule(net);
  FileCheck()
      .check("prim::GetAttr[name=\"training\"]")
      ->check("prim::If(")
      ->check("prim::CallMethod[name=\"_rdna1_training_forward\"]")
      ->check("prim::CallMethod[name=\"_rdna1_eval_forward\"]")
      ->check_not(kToHost)
      ->check_not("rdna1::conv")
      ->run(*net.get_method("forward").graph());
  EXPECT_EQ(countToHost(net, "_rdna1_eval_forward"), 1u);
  EXPECT_EQ(countToHost(net, "_rdna1_training_forward"), 2u);
  FileCheck()
      .check(kToHost + "(")
      ->check("aten::dropout(")
      ->check_not("rdna1::to_device")
      ->check("rdna1::conv(")
      ->run(*net.get_method("_rdna1_eval_forward").graph());
  bool logged = false;
  for (const std::string &decision : report.regionDecisions)
    logged |= decision.find("forward: eval path: a copy of the method") == 0;
  EXPECT_TRUE(logged);
}

TEST(OutlineEvalPath, EachModeComputesWhatTheOriginalDoes) {
  Module original = makeDropNet();
  Module net = makeDropNet();
  RewriteModule(net);
  const at::Tensor x = torch::randn({2, 3, 8, 8});
  EXPECT_TRUE(torch::allclose(runSeeded(net, x), runSeeded(original, x), 1e-5, 1e-6));
  // Only the submodule trains: its flag alone must choose the training copy.
  for (Module *m : {&net, &original})
    m->attr("drop").toModule().train(true);
  const at::Tensor dropped = runSeeded(net, x);
  EXPECT_TRUE(torch::allclose(dropped, runSeeded(original, x), 1e-5, 1e-6));
  net.attr("drop").toModule().train(false);
  EXPECT_FALSE(torch::allclose(dropped, runSeeded(net, x), 1e-5, 1e-6))
      << "the submodule's training flag did not reach the guard";
}

TEST(OutlineEvalPath, SavedAndLoadedModuleKeepsBothCopies) {
  Module original = makeDropNet();
  Module net = makeDropNet();
  RewriteModule(net);
  std::stringstream archive;
  net.save(archive);
  Module loaded = torch::jit::load(archive);
  ASSERT_TRUE(loaded.find_method("_rdna1_eval_forward").has_value());
  ASSERT_TRUE(loaded.find_method("_rdna1_training_forward").has_value());
  const at::Tensor x = torch::randn({1, 3, 6, 6});
  EXPECT_TRUE(torch::allclose(runSeeded(loaded, x), runSeeded(original, x), 1e-5, 1e-6));
  loaded.train(true);
  original.train(true);
  EXPECT_TRUE(torch::allclose(runSeeded(loaded, x), runSeeded(original, x), 1e-5, 1e-6));
}

TEST(OutlineEvalPath, SecondRewriteChangesNothing) {
  Module net = makeDropNet();
  RewriteModule(net);
  std::string before;
  for (const auto &method : net.get_methods())
    before += method.name() + ":\n" + method.graph()->toString();
  const ModuleReport again = RewriteModule(net);
  EXPECT_TRUE(again.unchanged());
  std::string after;
  for (const auto &method : net.get_methods())
    after += method.name() + ":\n" + method.graph()->toString();
  EXPECT_EQ(after, before);
}

TEST(OutlineEvalPath, OnlyForwardIsSplit) {
  auto cu = std::make_shared<CompilationUnit>();
  Module net = makeModule("TwoMethods", cu);
  net.register_parameter("weight", torch::randn({3, 3, 1, 1}), false);
  net.define(R"JIT(
def forward(self, x):
    return self.other(x)

def other(self, x):
    y = torch.conv2d(x, self.weight, None, [1, 1], [0, 0], [1, 1], 1)
    return torch.conv2d(torch.dropout(y, 0.5, self.training), self.weight, None, [1, 1], [0, 0], [1, 1], 1)
)JIT");
  RewriteModule(net);
  EXPECT_TRUE(net.find_method("_rdna1_eval_forward").has_value());
  EXPECT_FALSE(net.find_method("_rdna1_eval_other").has_value());
  FileCheck().check_not("prim::If")->run(*net.get_method("other").graph());
}

// conv -> batch norm (the module's training flag) -> relu -> conv: the flag
// steers only the norm, so without --train-regions there is no eval path.
Module makeNormNet() {
  auto cu = std::make_shared<CompilationUnit>();
  Module net = makeModule("NormNet", cu);
  torch::manual_seed(0);
  net.register_parameter("weight", torch::randn({3, 3, 3, 3}), false);
  net.register_buffer("mean", torch::zeros({3}));
  net.register_buffer("var", torch::ones({3}));
  net.define(R"JIT(
def forward(self, x):
    y = torch.conv2d(x, self.weight, None, [1, 1], [1, 1], [1, 1], 1)
    y = torch.batch_norm(y, None, None, self.mean, self.var, self.training, 0.1, 1e-5, False)
    return torch.conv2d(y.relu(), self.weight, None, [1, 1], [1, 1], [1, 1], 1)
)JIT");
  return net;
}

// A training flag that steers only a norm: an eval copy would save no
// crossing, so forward keeps one body, which computes what the original does in
// both modes and updates the running statistics in training mode.
TEST(OutlineEvalPath, NormSteeredByTrainingKeepsOneBody) {
  Module original = makeNormNet();
  Module net = makeNormNet();
  const ModuleReport report = RewriteModule(net);
  EXPECT_FALSE(net.find_method("_rdna1_eval_forward").has_value());
  EXPECT_FALSE(net.find_method("_rdna1_training_forward").has_value());
  EXPECT_EQ(report.regions, 1) << c10::Join("\n", report.regionDecisions);
  const at::Tensor x = torch::randn({2, 3, 6, 6});
  for (bool training : {true, false, true}) {
    net.train(training);
    original.train(training);
    EXPECT_TRUE(
        torch::allclose(net.forward({x}).toTensor(), original.forward({x}).toTensor(), 1e-5, 1e-5));
  }
  EXPECT_TRUE(torch::allclose(net.attr("mean").toTensor(), original.attr("mean").toTensor()));
  EXPECT_TRUE(torch::allclose(net.attr("var").toTensor(), original.attr("var").toTensor()));
  EXPECT_FALSE(torch::allclose(net.attr("mean").toTensor(), torch::zeros({3})))
      << "training mode did not update the running statistics";
}

} // namespace
