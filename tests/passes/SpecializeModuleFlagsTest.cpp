// SpecializeModuleFlags on a module defined in TorchScript: branches on flags
// fold, `training` and attributes the model sets itself stay dynamic, and what
// the module computes is unchanged.
#include "SpecializeModuleFlags.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/testing/file_check.h>

#include <string>
#include <vector>

namespace {

using rdna1::passes::SpecializeModuleFlags;
using torch::jit::testing::FileCheck;

torch::jit::Module makeModule() {
  torch::jit::Module inner("Inner");
  inner.register_attribute("use_res_connect", c10::BoolType::get(), true);
  inner.define(R"JIT(
def forward(self, x):
    if self.use_res_connect:
        return x + 1.0
    return x - 1.0
)JIT");
  torch::jit::Module m("Outer");
  m.register_module("block", inner);
  m.register_attribute("stride", c10::IntType::get(), 2);
  m.register_attribute("drop_rate", c10::FloatType::get(), 0.0);
  m.register_attribute("counter", c10::IntType::get(), 0);
  m.register_attribute("training", c10::BoolType::get(), true); // as nn.Module has
  m.define(R"JIT(
def forward(self, x):
    y = self.block.forward(x)
    if self.stride == 1:
        y = y * 2.0
    if self.drop_rate > 0.0:
        y = y * 5.0
    if self.training:
        y = y * 3.0
    self.counter = self.counter + 1
    if self.counter > 5:
        y = y / 4.0
    return y
)JIT");
  return m;
}

TEST(SpecializeModuleFlags, FoldsFlagBranchesAndKeepsTrainingAndAttributesTheModelSets) {
  torch::jit::Module m = makeModule();
  std::shared_ptr<torch::jit::Graph> graph = m.get_method("forward").graph();
  torch::jit::Inline(*graph);
  const std::vector<std::string> frozen = SpecializeModuleFlags(m, graph);
  EXPECT_EQ(frozen, (std::vector<std::string>{"block.use_res_connect=True", "drop_rate=0.000000",
                                              "stride=2"}));
  FileCheck()
      .check("aten::add(")
      ->check_not("aten::sub(")
      ->check("prim::GetAttr[name=\"training\"]")
      ->check("prim::If(")
      ->check("prim::SetAttr[name=\"counter\"]")
      ->check("prim::If(")
      ->run(*graph);
  EXPECT_EQ(graph->toString().find("use_res_connect"), std::string::npos) << *graph;
  EXPECT_EQ(graph->toString().find("stride"), std::string::npos) << *graph;
  EXPECT_NE(graph->toString().find("counter"), std::string::npos) << *graph;
}

TEST(SpecializeModuleFlags, ModuleComputesTheSameAndTrainingStaysDynamic) {
  torch::jit::Module m = makeModule();
  std::shared_ptr<torch::jit::Graph> graph = m.get_method("forward").graph();
  torch::jit::Inline(*graph);
  SpecializeModuleFlags(m, graph);
  const at::Tensor x = at::ones({2});
  m.train();
  EXPECT_TRUE(m.forward({x}).toTensor().equal(at::full({2}, 6.0))); // (1 + 1) * 3
  m.eval();
  EXPECT_TRUE(m.forward({x}).toTensor().equal(at::full({2}, 2.0)));
  for (int i = 0; i < 4; ++i)
    m.forward({x});
  EXPECT_TRUE(m.forward({x}).toTensor().equal(at::full({2}, 0.5))); // counter 6 > 5
}

// IntermediateLayerGetter's pattern: `name in self.return_layers` and
// `self.return_layers[name]` on a dict attribute no method writes.
torch::jit::Module makeDictModule(bool writesItsDict) {
  torch::jit::Module m("Getter");
  c10::Dict<std::string, std::string> layers;
  layers.insert("layer4", "out");
  m.register_attribute("return_layers",
                       c10::DictType::create(c10::StringType::get(), c10::StringType::get()),
                       layers);
  m.define(std::string(R"JIT(
def forward(self, x):
    out = {"none": x}
    if "layer3" in self.return_layers:
        out[self.return_layers["layer3"]] = x * 3.0
    if "layer4" in self.return_layers:
        out[self.return_layers["layer4"]] = x * 4.0
)JIT") + (writesItsDict ? "    self.return_layers[\"layer3\"] = \"aux\"\n" : "") +
           "    return out\n");
  return m;
}

TEST(SpecializeModuleFlags, FoldsLookupsInADictNoMethodWrites) {
  torch::jit::Module m = makeDictModule(false);
  std::shared_ptr<torch::jit::Graph> graph = m.get_method("forward").graph();
  torch::jit::Inline(*graph);
  const std::vector<std::string> frozen = SpecializeModuleFlags(m, graph);
  EXPECT_EQ(frozen, (std::vector<std::string>{"return_layers='layer3' in it: False",
                                              "return_layers='layer4' in it: True",
                                              "return_layers=['layer4']: 'out'"}));
  FileCheck().check_not("prim::If")->check("aten::mul(")->check_not("aten::mul(")->run(*graph);
  const auto out = m.forward({at::ones({1})}).toGenericDict();
  EXPECT_EQ(out.size(), 2u);
  EXPECT_TRUE(out.at("out").toTensor().equal(at::full({1}, 4.0)));
}

TEST(SpecializeModuleFlags, KeepsLookupsInADictAMethodWrites) {
  torch::jit::Module m = makeDictModule(true);
  std::shared_ptr<torch::jit::Graph> graph = m.get_method("forward").graph();
  torch::jit::Inline(*graph);
  EXPECT_TRUE(SpecializeModuleFlags(m, graph).empty());
  FileCheck().check_count("aten::__contains__", 2, /*exactly=*/true)->run(*graph);
}

TEST(SpecializeModuleFlags, GraphWithoutFlagBranchesIsLeftAlone) {
  torch::jit::Module m("Plain");
  m.define(R"JIT(
def forward(self, x):
    return x * 2.0
)JIT");
  std::shared_ptr<torch::jit::Graph> graph = m.get_method("forward").graph();
  const std::string before = graph->toString();
  EXPECT_TRUE(SpecializeModuleFlags(m, graph).empty());
  EXPECT_EQ(graph->toString(), before);
}

} // namespace
