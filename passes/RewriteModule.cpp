#include "RewriteModule.h"

#include "DisableCudnnInNorms.h"
#include "FindDnnLibraryCalls.h"
#include "LowerBatchNorms.h"
#include "LowerConvolutionBackward.h"
#include "LowerConvolutions.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/api/module.h>

namespace rdna1::passes {
namespace {

MethodReport rewriteGraph(const std::shared_ptr<torch::jit::Graph> &graph,
                          const c10::QualifiedName &name) {
  MethodReport report{name.prefix(), name.name(), {}, {}, {}};
  report.convolutions = LowerConvolutions(graph);
  for (const auto &[kind, count] : LowerConvolutionBackward(graph))
    report.convolutions[kind] += count;
  // Batch and instance norms become rdna1:: ops; the flag is cleared on the others.
  report.norms = LowerBatchNorms(graph);
  for (const auto &[kind, count] : DisableCudnnInNorms(graph))
    report.norms[kind] += count;
  report.dnnLibraryCalls = FindDnnLibraryCalls(graph);
  return report;
}

} // namespace

int ModuleReport::convolutions() const {
  int sum = 0;
  for (const auto &method : methods)
    sum += total(method.convolutions);
  return sum;
}

int ModuleReport::norms() const {
  int sum = 0;
  for (const auto &method : methods)
    sum += total(method.norms);
  return sum;
}

int ModuleReport::methodsChanged() const {
  int changed = 0;
  for (const auto &method : methods)
    changed += (total(method.convolutions) + total(method.norms)) > 0 ? 1 : 0;
  return changed;
}

bool ModuleReport::safe() const {
  for (const auto &method : methods)
    if (!method.dnnLibraryCalls.empty())
      return false;
  return true;
}

// All instances of a scripted class share one graph per method, and every
// method and free function lives in the module's compilation unit, so walking
// that unit reaches each graph exactly once without inlining.
ModuleReport RewriteModule(torch::jit::Module &module) {
  ModuleReport report;
  for (torch::jit::Function *function : module._ivalue()->compilation_unit()->get_functions()) {
    if (!function->isGraphFunction())
      continue;
    MethodReport method =
        rewriteGraph(torch::jit::toGraphFunction(*function).graph(), function->qualname());
    if (total(method.convolutions) + total(method.norms) > 0 || !method.dnnLibraryCalls.empty())
      report.methods.push_back(std::move(method));
  }
  return report;
}

} // namespace rdna1::passes
