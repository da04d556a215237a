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

TEST(OutlineEvalPath, TrainingRegionModeGivesEachModeItsCopy) {
  Module plain = makeNormNet();
  RewriteModule(plain);
  EXPECT_FALSE(plain.find_method("_rdna1_eval_forward").has_value());

  Module original = makeNormNet();
  Module net = makeNormNet();
  rdna1::passes::RewriteOptions options;
  options.trainingRegionMode = rdna1::passes::RegionMode::ConvOnly;
  const ModuleReport report = RewriteModule(net, options);
  bool logged = false;
  for (const std::string &decision : report.regionDecisions)
    logged |= decision.find("forward: a copy for training mode with conv regions and one for "
                            "eval mode with auto, chosen by its 1 training flags") == 0;
  EXPECT_TRUE(logged) << c10::Join("\n", report.regionDecisions);
  EXPECT_EQ(countToHost(net, "_rdna1_training_forward"), 2u); // the norm on the device
  EXPECT_EQ(countToHost(net, "_rdna1_eval_forward"), 1u);
  FileCheck()
      .check("rdna1::conv(")
      ->check("rdna1::to_device")
      ->check("rdna1::batch_norm(")
      ->run(*net.get_method("_rdna1_training_forward").graph());

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
      << "the training copy did not update the running statistics";
}

// RDNA1_TRAIN_REGIONS set for the lifetime of the object (the runtime reads it per call).
class ForcedTrainingRegions {
public:
  explicit ForcedTrainingRegions(const char *choice) { ::setenv("RDNA1_TRAIN_REGIONS", choice, 1); }
  ~ForcedTrainingRegions() { ::unsetenv("RDNA1_TRAIN_REGIONS"); }
  ForcedTrainingRegions(const ForcedTrainingRegions &) = delete;
  ForcedTrainingRegions &operator=(const ForcedTrainingRegions &) = delete;
};

// --train-regions=bus: training mode gets a copy with auto regions and one
// whose convolutions alone run on the host, each on its own, and forward asks the runtime which to
// take, per call, for the device of its tensor argument; each copy computes what the original does.
TEST(OutlineEvalPath, ConvTrainingCopyIsChosenByTheRuntime) {
  Module original = makeNormNet();
  Module net = makeNormNet();
  rdna1::passes::RewriteOptions options;
  options.trainingRegionMode = rdna1::passes::RegionMode::Auto;
  options.convTrainingCopyByBus = true;
  const ModuleReport report = RewriteModule(net, options);
  bool logged = false;
  for (const std::string &decision : report.regionDecisions)
    logged |= decision.find("forward: a copy for training mode with auto or conv regions (conv: "
                            "convolutions alone on the host, each on its own, where the runtime "
                            "finds the bus fast enough); eval mode takes the "
                            "auto copy (an eval copy would save no crossing), chosen by its 1 "
                            "training flags") == 0;
  EXPECT_TRUE(logged) << c10::Join("\n", report.regionDecisions);
  // The flag steers only the norm: eval mode takes the auto copy, and there is no third.
  FileCheck()
      .check("prim::If")
      ->check("prim::device(%x")
      ->check("rdna1::train_with_conv_regions(")
      ->check("prim::If")
      ->check("prim::CallMethod[name=\"_rdna1_training_conv_forward\"]")
      ->check("prim::CallMethod[name=\"_rdna1_training_forward\"]")
      ->check("prim::CallMethod[name=\"_rdna1_training_forward\"]")
      ->check_not("_rdna1_eval_forward")
      ->check_not("rdna1::to_host")
      ->run(*net.get_method("forward").graph());
  EXPECT_FALSE(net.find_method("_rdna1_eval_forward").has_value());
  // The conv copy has no regions: its convolution moves its own operands (one
  // autograd node), the norm stays on the device.
  EXPECT_EQ(countToHost(net, "_rdna1_training_conv_forward"), 0u);
  FileCheck()
      .check("rdna1::conv(")
      ->check("rdna1::batch_norm(")
      ->check_not("rdna1::to_device")
      ->run(*net.get_method("_rdna1_training_conv_forward").graph());
  bool noRegions = false;
  for (const std::string &decision : report.regionDecisions)
    noRegions |= decision == "_rdna1_training_conv_forward: no regions: each convolution moves its "
                             "own operands, one autograd node per convolution";
  EXPECT_TRUE(noRegions) << c10::Join("\n", report.regionDecisions);
  EXPECT_EQ(countToHost(net, "_rdna1_training_forward"), 1u);

  const at::Tensor x = torch::randn({2, 3, 6, 6});
  for (const char *choice : {"conv", "auto"}) {
    const ForcedTrainingRegions forced(choice);
    for (bool training : {true, false}) {
      net.train(training);
      original.train(training);
      EXPECT_TRUE(torch::allclose(net.forward({x}).toTensor(), original.forward({x}).toTensor(),
                                  1e-5, 1e-5))
          << choice << (training ? " training" : " eval");
    }
  }
  EXPECT_TRUE(torch::allclose(net.attr("mean").toTensor(), original.attr("mean").toTensor()));
  EXPECT_TRUE(torch::allclose(net.attr("var").toTensor(), original.attr("var").toTensor()));

  // Saved and loaded, it still computes what the original does; a second
  // rewrite leaves the copies and the choice as they are.
  std::stringstream file;
  net.save(file);
  Module loaded = torch::jit::load(file);
  loaded.train(true);
  original.train(true);
  EXPECT_FALSE(loaded.find_method("_rdna1_eval_forward").has_value());
  EXPECT_TRUE(torch::allclose(loaded.forward({x}).toTensor(), original.forward({x}).toTensor(),
                              1e-5, 1e-5));
  const std::string before = loaded.get_method("forward").graph()->toString();
  const ModuleReport again = RewriteModule(loaded, options);
  EXPECT_EQ(again.regions, 0);
  EXPECT_EQ(loaded.get_method("forward").graph()->toString(), before);
}

// Where a training flag steers more than a norm (dropout), eval mode keeps a
// copy of its own beside the two training copies.
TEST(OutlineEvalPath, ConvTrainingCopyKeepsTheEvalCopyWhereItSavesWork) {
  Module net = makeDropNet();
  rdna1::passes::RewriteOptions options;
  options.trainingRegionMode = rdna1::passes::RegionMode::Auto;
  options.convTrainingCopyByBus = true;
  RewriteModule(net, options);
  for (const char *copy :
       {"_rdna1_training_forward", "_rdna1_training_conv_forward", "_rdna1_eval_forward"})
    EXPECT_TRUE(net.find_method(copy).has_value()) << copy;
  EXPECT_EQ(countToHost(net, "_rdna1_eval_forward"), 1u);
  EXPECT_EQ(countToHost(net, "_rdna1_training_forward"), 2u); // dropout draws on the device
}

} // namespace
