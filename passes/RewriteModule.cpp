#include "RewriteModule.h"

#include "OpSymbols.h"

#include "DisableCudnnInNorms.h"
#include "FindDnnLibraryCalls.h"
#include "InsertHostRegions.h"
#include "LowerBatchNorms.h"
#include "LowerConvolutionBackward.h"
#include "LowerConvolutions.h"
#include "LowerRecurrentLayers.h"
#include "OutlineEvalPath.h"
#include "ReshapeInsteadOfView.h"
#include "SetDefaultBackend.h"
#include "SpecializeModuleFlags.h"
#include "SplitForEvalMode.h"

#include "GraphWalk.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <map>
#include <unordered_set>

namespace rdna1::passes {
namespace {

MethodReport rewriteGraph(const std::shared_ptr<torch::jit::Graph> &graph,
                          const c10::QualifiedName &name) {
  MethodReport report{name.prefix(), name.name(), {}, {}, {}, {}, {}};
  report.convolutions = LowerConvolutions(graph);
  for (const auto &[kind, count] : LowerConvolutionBackward(graph))
    report.convolutions[kind] += count;
  // Batch and instance norms become rdna1:: ops; the flag is cleared on the others.
  report.norms = LowerBatchNorms(graph);
  for (const auto &[kind, count] : DisableCudnnInNorms(graph))
    report.norms[kind] += count;
  report.recurrent = LowerRecurrentLayers(graph);
  report.dnnLibraryCalls = FindDnnLibraryCalls(graph);
  report.remainingDnnUsers = FindRemainingDnnUsers(graph);
  return report;
}

bool isConvolutionCall(const torch::jit::Node *node) {
  return node->kind() == symbols::kConv || node->kind() == symbols::kConvBackward;
}

bool isNormCall(const torch::jit::Node *node) {
  return node->kind() == symbols::kBatchNorm || node->kind() == symbols::kInstanceNorm;
}

bool isRecurrentCall(const torch::jit::Node *node) {
  return node->kind() == symbols::kLstm || node->kind() == symbols::kGru ||
         node->kind() == symbols::kRnnTanh || node->kind() == symbols::kRnnRelu;
}

// Calls of rewritten layers, by what they are.
struct LayerCalls {
  int convolutions = 0;
  int norms = 0;
  int recurrent = 0;

  int total() const { return convolutions + norms + recurrent; }
  LayerCalls &operator+=(const LayerCalls &other) {
    convolutions += other.convolutions;
    norms += other.norms;
    recurrent += other.recurrent;
    return *this;
  }
};

// Layer calls in `block`, counting the larger branch of each prim::If: what
// one run calls at most, so a method split into a training and an eval copy
// (SpecializeEvalPath.h) counts its layers once.
LayerCalls callsIn(torch::jit::Block *block) {
  LayerCalls calls;
  for (torch::jit::Node *node : block->nodes()) {
    calls.convolutions += isConvolutionCall(node) ? 1 : 0;
    calls.norms += isNormCall(node) ? 1 : 0;
    calls.recurrent += isRecurrentCall(node) ? 1 : 0;
    LayerCalls inner;
    for (torch::jit::Block *branch : node->blocks()) {
      const LayerCalls each = callsIn(branch);
      if (node->kind() != c10::prim::If)
        inner += each;
      else if (each.total() > inner.total())
        inner = each;
    }
    calls += inner;
  }
  return calls;
}

// Layer calls of the module's largest own method (forward, for most models),
// inlined: the layers a user counts. (Methods call each other: torchvision's
// forward calls _forward_impl, so they are not summed.)
LayerCalls countLayers(torch::jit::Module &module) {
  LayerCalls largest;
  for (const torch::jit::Method &method : module.get_methods()) {
    const std::shared_ptr<torch::jit::Graph> graph = method.graph()->copy();
    torch::jit::Inline(*graph);
    const LayerCalls layers = callsIn(graph->block());
    if (layers.total() > largest.total())
      largest = layers;
  }
  return largest;
}

// "N module attributes frozen: use_res_connect x17, stride x16" from "path=value"s.
std::string describeFrozen(const std::vector<std::string> &frozen) {
  std::map<std::string, int> byName;
  for (const std::string &entry : frozen) {
    const std::string path = entry.substr(0, entry.find('='));
    const size_t dot = path.rfind('.');
    byName[dot == std::string::npos ? path : path.substr(dot + 1)] += 1;
  }
  std::string text = std::to_string(frozen.size()) +
                     " module attributes that steer branches frozen at their current values:";
  for (const auto &[name, count] : byName)
    text += " " + name + " x" + std::to_string(count) + ",";
  text.pop_back();
  return text;
}

void addDecisions(const std::string &method, RegionStats &stats,
                  std::vector<std::string> &decisions) {
  for (std::string &decision : stats.decisions)
    decisions.push_back(std::string(method).append(": ").append(decision));
}

// Regions must span submodule boundaries, so the module's own methods are
// inlined first, and branches on module flags folded; submodules keep their
// methods (rewritten per op above). Only `forward` gets an eval path: each
// copy costs load time and memory, and forward is what users call.
void insertRegions(torch::jit::Module &module, ModuleReport &report) {
  std::vector<std::string> &decisions = report.regionDecisions;
  std::vector<std::string> names;
  for (const torch::jit::Method &method : module.get_methods())
    names.push_back(method.name());
  for (const std::string &name : names) {
    if (IsOutlinedCopy(name) || HasOutlinedCopies(module, name))
      continue; // rewritten before: leave it exactly as it is
    std::shared_ptr<torch::jit::Graph> graph = module.get_method(name).graph();
    if (HasHostRegions(graph))
      continue;
    torch::jit::Inline(*graph);
    const auto frozen = SpecializeModuleFlags(module, graph);
    if (!frozen.empty())
      decisions.push_back(name + ": " + describeFrozen(frozen));
    if (const int views = ReshapeInsteadOfView(graph))
      decisions.push_back(name + ": " + std::to_string(views) +
                          " views written nowhere turned into reshapes (host tensors are "
                          "channels-last, where the view may not exist)");
    std::string splitDecision;
    torch::jit::Node *split = name == "forward" && CanOutlineEvalPath(module, name)
                                  ? SplitForEvalMode(graph, splitDecision)
                                  : nullptr;
    if (!splitDecision.empty())
      decisions.push_back(name + ": " + splitDecision);
    RegionStats stats = InsertHostRegions(graph);
    if (split)
      OutlineEvalPath(module, name, split);
    report.regions += stats.regions;
    addDecisions(name, stats, decisions);
  }
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

int ModuleReport::recurrent() const {
  int sum = 0;
  for (const auto &method : methods)
    sum += total(method.recurrent);
  return sum;
}

int ModuleReport::methodsChanged() const {
  int changed = 0;
  for (const auto &method : methods)
    changed +=
        (total(method.convolutions) + total(method.norms) + total(method.recurrent)) > 0 ? 1 : 0;
  return changed;
}

bool ModuleReport::safe() const {
  for (const auto &method : methods)
    if (!method.dnnLibraryCalls.empty())
      return false;
  return true;
}

// Every function of the compilation units of the module and its submodules:
// a loaded model has one unit, a module built in C++ one per module.
std::vector<torch::jit::Function *> allFunctions(const torch::jit::Module &module) {
  std::vector<torch::jit::Function *> functions;
  std::unordered_set<const torch::jit::CompilationUnit *> units;
  std::unordered_set<const torch::jit::Function *> seen;
  for (const torch::jit::Module &submodule : module.modules()) {
    const auto unit = submodule._ivalue()->compilation_unit();
    if (!units.insert(unit.get()).second)
      continue;
    for (torch::jit::Function *function : unit->get_functions())
      if (seen.insert(function).second)
        functions.push_back(function);
  }
  return functions;
}

// All instances of a scripted class share one graph per method, so walking the
// compilation units reaches each graph exactly once without inlining.
ModuleReport RewriteModule(torch::jit::Module &module, const RewriteOptions &options) {
  ModuleReport report;
  for (torch::jit::Function *function : allFunctions(module)) {
    if (!function->isGraphFunction())
      continue;
    MethodReport method =
        rewriteGraph(torch::jit::toGraphFunction(*function).graph(), function->qualname());
    if (total(method.convolutions) + total(method.norms) + total(method.recurrent) > 0 ||
        !method.dnnLibraryCalls.empty() || !method.remainingDnnUsers.empty())
      report.methods.push_back(std::move(method));
  }
  if (options.regions == RegionMode::Auto)
    insertRegions(module, report);
  // A model that now calls the runtime gets its default, "auto" too (SetDefaultBackend.h); one
  // with nothing rewritten keeps what it had, unless a default was asked for.
  report.defaultBackend = options.backend;
  const bool bake =
      options.backend != "auto" || report.convolutions() + report.norms() + report.recurrent() > 0;
  for (const torch::jit::Method &method : module.get_methods())
    report.backendChanged |= SetDefaultBackend(method.graph(), options.backend, bake);
  const LayerCalls layers = countLayers(module);
  report.convolutionLayers = layers.convolutions;
  report.normLayers = layers.norms;
  report.recurrentLayers = layers.recurrent;
  return report;
}

} // namespace rdna1::passes
