// Tests of RewriteModule on modules built in C++: every method graph of every
// class is rewritten once, the report says what changed, and the rewritten
// module still computes the same results through the rdna1 runtime.
#include "RewriteModule.h"
#include "FindDnnLibraryCalls.h"

#include <rdna1/OpSchemas.h>

#include <gtest/gtest.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/csrc/jit/testing/file_check.h>
#include <torch/script.h>

#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

using rdna1::passes::MethodReport;
using rdna1::passes::ModuleReport;
using rdna1::passes::RewriteCounts;
using rdna1::passes::RewriteModule;
using torch::jit::CompilationUnit;
using torch::jit::Module;
using torch::jit::testing::FileCheck;

// A TorchScript model loaded from disk keeps all its classes in one
// compilation unit; modules built here share one the same way.
struct Modules {
  std::shared_ptr<CompilationUnit> cu = std::make_shared<CompilationUnit>();
  Module make(const std::string &name) { return Module(name, cu); }
};

// Child: two methods with convolutions, one without.
Module makeChild(Modules &modules) {
  Module child = modules.make("Child");
  child.register_parameter("weight", torch::randn({4, 3, 3, 3}), false);
  child.define(R"JIT(
def forward(self, x):
    return torch.conv2d(x, self.weight, None, [1, 1], [1, 1], [1, 1], 1)

def up(self, x):
    return torch.conv_transpose2d(x, self.weight, None, [2, 2], [1, 1], [1, 1], 1, [1, 1])

def scale(self, x):
    return x * 2.0
)JIT");
  return child;
}

// Net: holds a Child; one method with two convolutions (int and string
// padding), one with a norm only, two with neither.
Module makeNet(Modules &modules) {
  Module net = modules.make("Net");
  net.register_parameter("weight", torch::randn({3, 3, 3, 3}), false);
  net.register_module("child", makeChild(modules));
  net.define(R"JIT(
def forward(self, x):
    return self.child.forward(self.helper(x)) + self.child.scale(self.identity(x)).sum()

def helper(self, x):
    y = torch.conv2d(x, self.weight, None, [1, 1], [1, 1], [1, 1], 1)
    if bool(y.sum() > 0.0):
        y = torch.conv2d(y, self.weight, None, [1, 1], "same", [1, 1], 1)
    return y

def norm(self, x):
    return torch.batch_norm(x, None, None, None, None, True, 0.1, 1e-5, True)

def identity(self, x):
    return x.relu()
)JIT");
  return net;
}

using MethodKey = std::pair<std::string, std::string>; // owner, method

std::map<MethodKey, MethodReport> byMethod(const ModuleReport &report) {
  std::map<MethodKey, MethodReport> methods;
  for (const MethodReport &method : report.methods)
    EXPECT_TRUE(methods.emplace(MethodKey{method.owner, method.method}, method).second)
        << method.owner << "." << method.method << " reported twice";
  return methods;
}

// Every graph function of every compilation unit reachable from `module`.
std::vector<torch::jit::GraphFunction *> allGraphFunctions(const Module &module) {
  std::set<CompilationUnit *> units;
  std::vector<torch::jit::GraphFunction *> functions;
  for (const Module &each : module.modules()) {
    CompilationUnit *cu = each._ivalue()->compilation_unit().get();
    if (!units.insert(cu).second)
      continue;
    for (torch::jit::Function *function : cu->get_functions())
      if (function->isGraphFunction())
        functions.push_back(&torch::jit::toGraphFunction(*function));
  }
  return functions;
}

TEST(RewriteModule, LeavesNoDnnLibraryCallInAnyMethodGraph) {
  Modules modules;
  Module net = makeNet(modules);
  const auto functions = allGraphFunctions(net);
  ASSERT_EQ(functions.size(), 7u);
  int before = 0;
  for (auto *function : functions)
    before += static_cast<int>(rdna1::passes::FindDnnLibraryCalls(function->graph()).size());
  ASSERT_EQ(before, 5); // four convolutions and a batch norm: the test starts from real calls

  RewriteModule(net);
  for (auto *function : functions) {
    const auto graph = function->graph();
    EXPECT_TRUE(rdna1::passes::FindDnnLibraryCalls(graph).empty())
        << function->qualname().qualifiedName() << ":\n"
        << *graph;
    FileCheck().check_not("aten::conv")->run(*graph);
  }
  FileCheck()
      .check_count("rdna1::conv(", 2, /*exactly=*/true)
      ->run(*net.get_method("helper").graph());
  FileCheck()
      .check_count("rdna1::conv(", 1, /*exactly=*/true)
      ->run(*net.attr("child").toModule().get_method("up").graph());
  FileCheck().check("rdna1::batch_norm(")->run(*net.get_method("norm").graph());
}

TEST(RewriteModule, ReportsOwnerMethodAndCountsPerChangedMethod) {
  Modules modules;
  Module net = makeNet(modules);
  const ModuleReport report = RewriteModule(net);
  const auto methods = byMethod(report);

  std::set<MethodKey> keys;
  for (const auto &entry : methods)
    keys.insert(entry.first);
  EXPECT_EQ(keys, (std::set<MethodKey>{{"__torch__.Net", "helper"},
                                       {"__torch__.Net", "norm"},
                                       {"__torch__.Child", "forward"},
                                       {"__torch__.Child", "up"}}));

  auto at = [&](const char *owner, const char *method) -> const MethodReport & {
    static const MethodReport kMissing{};
    const auto found = methods.find({owner, method});
    return found == methods.end() ? kMissing : found->second;
  };
  EXPECT_EQ(at("__torch__.Net", "helper").convolutions, (RewriteCounts{{"aten::conv2d", 2}}));
  EXPECT_TRUE(at("__torch__.Net", "helper").norms.empty());
  EXPECT_TRUE(at("__torch__.Net", "norm").convolutions.empty());
  EXPECT_EQ(at("__torch__.Net", "norm").norms, (RewriteCounts{{"aten::batch_norm", 1}}));
  EXPECT_EQ(at("__torch__.Child", "forward").convolutions, (RewriteCounts{{"aten::conv2d", 1}}));
  EXPECT_EQ(at("__torch__.Child", "up").convolutions,
            (RewriteCounts{{"aten::conv_transpose2d", 1}}));
  for (const auto &entry : methods)
    EXPECT_TRUE(entry.second.dnnLibraryCalls.empty()) << entry.first.second;

  EXPECT_EQ(report.convolutions(), 4);
  EXPECT_EQ(report.norms(), 1);
  EXPECT_EQ(report.methodsChanged(), 4);
  EXPECT_TRUE(report.safe());
}

TEST(RewriteModule, DoesNotListMethodsWithoutConvolutionsOrNorms) {
  Modules modules;
  Module net = makeNet(modules);
  for (const MethodReport &method : RewriteModule(net).methods) {
    EXPECT_NE(method.method, "identity");
    EXPECT_NE(method.method, "scale");
    EXPECT_FALSE(method.owner == "__torch__.Net" && method.method == "forward");
  }
}

TEST(RewriteModule, ModuleWithoutConvolutionsGetsAnEmptySafeReport) {
  Modules modules;
  Module plain = modules.make("Plain");
  plain.define(R"JIT(
def forward(self, x):
    return torch.relu(x) + 1.0
)JIT");
  const std::string before = plain.get_method("forward").graph()->toString();
  const ModuleReport report = RewriteModule(plain);
  EXPECT_TRUE(report.methods.empty());
  EXPECT_EQ(report.convolutions(), 0);
  EXPECT_EQ(report.methodsChanged(), 0);
  EXPECT_TRUE(report.safe());
  EXPECT_EQ(plain.get_method("forward").graph()->toString(), before);
}

TEST(RewriteModule, SecondRewriteReportsNothingAndChangesNoGraph) {
  Modules modules;
  Module net = makeNet(modules);
  ASSERT_EQ(RewriteModule(net).convolutions(), 4);
  std::vector<std::string> afterFirst;
  for (auto *function : allGraphFunctions(net))
    afterFirst.push_back(function->graph()->toString());

  const ModuleReport second = RewriteModule(net);
  EXPECT_EQ(second.convolutions(), 0);
  EXPECT_EQ(second.norms(), 0);
  EXPECT_EQ(second.methodsChanged(), 0);
  EXPECT_TRUE(second.methods.empty());
  EXPECT_TRUE(second.safe());
  std::vector<std::string> afterSecond;
  for (auto *function : allGraphFunctions(net))
    afterSecond.push_back(function->graph()->toString());
  EXPECT_EQ(afterSecond, afterFirst);
}

TEST(RewriteModule, RewritesAGraphSharedByTwoInstancesOnce) {
  // Two instances of one class share their method graphs: one report entry each.
  Modules modules;
  Module pair = modules.make("Pair");
  Module first = makeChild(modules);
  Module second(modules.cu, first.type());
  second.register_parameter("weight", torch::randn({4, 3, 3, 3}), false);
  pair.register_module("a", first);
  pair.register_module("b", second);
  pair.define(R"JIT(
def forward(self, x):
    return self.a.forward(x) + self.b.forward(x)
)JIT");
  const ModuleReport report = RewriteModule(pair);
  const auto methods = byMethod(report); // fails on a duplicate entry
  EXPECT_EQ(methods.size(), 2u);
  EXPECT_EQ(methods.count({"__torch__.Child", "forward"}), 1u);
  EXPECT_EQ(methods.count({"__torch__.Child", "up"}), 1u);
  EXPECT_EQ(report.convolutions(), 2);
  FileCheck().check("rdna1::conv(")->run(*second.get_method("forward").graph());
}

TEST(RewriteModule, RewritesClonedSubmoduleClassToo) {
  // clone() gives the copy its own (mangled) class with its own method graphs.
  Modules modules;
  Module pair = modules.make("Pair");
  Module child = makeChild(modules);
  Module copy = child.clone();
  ASSERT_NE(copy.type(), child.type());
  pair.register_module("a", child);
  pair.register_module("b", copy);
  pair.define(R"JIT(
def forward(self, x):
    return self.a.forward(x) + self.b.forward(x)
)JIT");
  const ModuleReport report = RewriteModule(pair);
  EXPECT_EQ(report.convolutions(), 4);
  EXPECT_EQ(report.methodsChanged(), 4);
  for (const Module &each : pair.modules())
    for (const auto &method : each.get_methods())
      EXPECT_TRUE(rdna1::passes::FindDnnLibraryCalls(method.graph()).empty())
          << each.type()->name()->qualifiedName() << "." << method.name();
}

TEST(RewriteModule, RewritesModuleLoadedFromSerializedArchive) {
  Modules modules;
  Module net = makeNet(modules);
  std::stringstream archive;
  net.save(archive);
  Module loaded = torch::jit::load(archive);
  const ModuleReport report = RewriteModule(loaded);
  EXPECT_EQ(report.convolutions(), 4);
  EXPECT_EQ(report.norms(), 1);
  EXPECT_EQ(report.methodsChanged(), 4);
  EXPECT_TRUE(report.safe());
  for (auto *function : allGraphFunctions(loaded))
    EXPECT_TRUE(rdna1::passes::FindDnnLibraryCalls(function->graph()).empty());
  EXPECT_EQ(RewriteModule(loaded).convolutions(), 0);
}

// --- numerics through the runtime -----------------------------------------------------

// Runs `source`'s forward (on a module holding `weight` and `bias`) rewritten,
// and returns its output; the rewrite must have changed the method, and the
// output must come from the runtime's rdna1::conv (seen in its autograd node).
at::Tensor runRewritten(const std::string &source, const at::Tensor &weight, const at::Tensor &bias,
                        const at::Tensor &x) {
  Modules modules;
  Module m = modules.make("ConvNet");
  m.register_parameter("weight", weight, false);
  m.register_parameter("bias", bias, false);
  m.define(source);
  const ModuleReport report = RewriteModule(m);
  EXPECT_EQ(report.convolutions(), 1);
  FileCheck().check("rdna1::conv")->run(*m.get_method("forward").graph());
  const at::Tensor out = m.forward({x.detach().requires_grad_(true)}).toTensor();
  EXPECT_NE(out.grad_fn(), nullptr);
  if (out.grad_fn())
    EXPECT_NE(out.grad_fn()->name().find("HostConvolutionFunction"), std::string::npos)
        << "computed by " << out.grad_fn()->name() << ", not by rdna1::conv";
  return out.detach();
}

TEST(RewriteModule, RewrittenConv2dMatchesAtenConv2d) {
  torch::manual_seed(0);
  const at::Tensor weight = torch::randn({4, 3, 3, 3});
  const at::Tensor bias = torch::randn({4});
  const at::Tensor x = torch::randn({2, 3, 9, 7});
  const at::Tensor expected = at::conv2d(x, weight, bias, {2, 1}, {1, 1}, {1, 1}, 1);
  const at::Tensor actual = runRewritten(R"JIT(
def forward(self, x):
    return torch.conv2d(x, self.weight, self.bias, [2, 1], [1, 1], [1, 1], 1)
)JIT",
                                         weight, bias, x);
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-5, 1e-5));
}

TEST(RewriteModule, RewrittenConv2dWithSamePaddingMatchesAten) {
  torch::manual_seed(1);
  const at::Tensor weight = torch::randn({4, 3, 3, 5});
  const at::Tensor bias = torch::randn({4});
  const at::Tensor x = torch::randn({1, 3, 8, 8});
  const at::Tensor expected = at::conv2d(x, weight, bias, {1, 1}, "same", {2, 1}, 1);
  const at::Tensor actual = runRewritten(R"JIT(
def forward(self, x):
    return torch.conv2d(x, self.weight, self.bias, [1, 1], "same", [2, 1], 1)
)JIT",
                                         weight, bias, x);
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-5, 1e-5));
}

TEST(RewriteModule, RewrittenConvTranspose2dMatchesAten) {
  torch::manual_seed(2);
  const at::Tensor weight = torch::randn({4, 2, 3, 3}); // in=4, out/groups=2, groups=2
  const at::Tensor bias = torch::randn({4});
  const at::Tensor x = torch::randn({1, 4, 5, 6});
  const at::Tensor expected =
      at::conv_transpose2d(x, weight, bias, {2, 2}, {1, 0}, {1, 1}, 2, {1, 2});
  const at::Tensor actual = runRewritten(R"JIT(
def forward(self, x):
    return torch.conv_transpose2d(x, self.weight, self.bias, [2, 2], [1, 0], [1, 1], 2, [1, 2])
)JIT",
                                         weight, bias, x);
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-5, 1e-5));
}

// --- modules that still reach a DNN library -------------------------------------------

TEST(RewriteModule, MiopenBatchNormMakesReportUnsafe) {
  Modules modules;
  Module m = modules.make("MiopenNorm");
  m.register_parameter("weight", torch::ones({3}), false);
  m.register_parameter("conv_weight", torch::ones({3, 3, 1, 1}), false);
  m.define(R"JIT(
def forward(self, x):
    y = torch.conv2d(x, self.conv_weight, None, [1, 1], [0, 0], [1, 1], 1)
    return torch.miopen_batch_norm(y, self.weight, None, None, None, True, 0.1, 1e-5)[0]
)JIT");
  const ModuleReport report = RewriteModule(m);
  EXPECT_FALSE(report.safe());
  ASSERT_EQ(report.methods.size(), 1u);
  const MethodReport &method = report.methods[0];
  EXPECT_EQ(method.owner, "__torch__.MiopenNorm");
  EXPECT_EQ(method.method, "forward");
  EXPECT_EQ(method.convolutions, (RewriteCounts{{"aten::conv2d", 1}}));
  EXPECT_EQ(method.dnnLibraryCalls, std::vector<std::string>{"aten::miopen_batch_norm"});
}

TEST(RewriteModule, CudnnBatchNormAloneIsListedAndUnsafe) {
  Modules modules;
  Module m = modules.make("CudnnNorm");
  m.register_parameter("weight", torch::ones({3}), false);
  m.define(R"JIT(
def forward(self, x):
    return x.relu()

def bn(self, x):
    return torch.cudnn_batch_norm(x, self.weight, None, None, None, True, 0.1, 1e-5)[0]
)JIT");
  const ModuleReport report = RewriteModule(m);
  EXPECT_FALSE(report.safe());
  EXPECT_EQ(report.convolutions(), 0);
  EXPECT_EQ(report.methodsChanged(), 0);
  ASSERT_EQ(report.methods.size(), 1u); // listed although nothing was rewritten
  EXPECT_EQ(report.methods[0].method, "bn");
  EXPECT_EQ(report.methods[0].dnnLibraryCalls, std::vector<std::string>{"aten::cudnn_batch_norm"});
}

// An LSTM then a GRU, called as scripted nn.LSTM / nn.GRU call them; seeded weights.
Module makeRecurrent(Modules &modules) {
  torch::manual_seed(0);
  Module net = modules.make("Recurrent");
  net.register_parameter("w_ih", torch::randn({12, 2}), false);
  net.register_parameter("w_hh", torch::randn({12, 3}), false);
  net.register_parameter("g_ih", torch::randn({9, 3}), false);
  net.register_parameter("g_hh", torch::randn({9, 3}), false);
  net.define(R"JIT(
def forward(self, x, h, c):
    y, hn, cn = torch.lstm(x, [h, c], [self.w_ih, self.w_hh], False, 1, 0.0, False, False, False)
    z, gn = torch.gru(y, h, [self.g_ih, self.g_hh], False, 1, 0.0, False, False, False)
    return z + gn.sum() + cn.sum()
)JIT");
  return net;
}

// Recurrent layers are rewritten and counted, leave nothing to warn about, and
// still compute what ATen's own layers compute.
TEST(RewriteModule, RecurrentLayersAreRewrittenCountedAndComputeTheSame) {
  Modules referenceModules, modules;
  Module reference = makeRecurrent(referenceModules);
  Module net = makeRecurrent(modules); // never run before the rewrite: executors keep their plan
  const auto x = torch::randn({4, 2, 2});
  const auto h = torch::randn({1, 2, 3});
  const auto c = torch::randn({1, 2, 3});
  const at::Tensor expected = reference.forward({x, h, c}).toTensor();

  const ModuleReport report = RewriteModule(net);
  EXPECT_EQ(report.recurrent(), 2);
  EXPECT_EQ(report.recurrentLayers, 2);
  EXPECT_EQ(report.methodsChanged(), 1);
  EXPECT_FALSE(report.unchanged());
  ASSERT_EQ(report.methods.size(), 1u);
  EXPECT_EQ(report.methods[0].recurrent, (RewriteCounts{{"aten::gru", 1}, {"aten::lstm", 1}}));
  EXPECT_TRUE(report.methods[0].remainingDnnUsers.empty());
  FileCheck()
      .check_not("aten::lstm")
      ->check("rdna1::lstm")
      ->check("rdna1::gru")
      ->run(*net.get_method("forward").graph());
  EXPECT_TRUE(torch::allclose(net.forward({x, h, c}).toTensor(), expected, 1e-5, 1e-6));

  const ModuleReport second = RewriteModule(net);
  EXPECT_EQ(second.recurrent(), 0);
  EXPECT_TRUE(second.unchanged());
}

} // namespace
