#include "RewriteModule.h"

#include "DisableCudnnInNorms.h"
#include "FindDnnLibraryCalls.h"
#include "LowerBatchNorms.h"
#include "LowerConvolutionBackward.h"
#include "LowerConvolutions.h"
#include "OutlineEvalPath.h"
#include "ReshapeInsteadOfView.h"
#include "SetDefaultBackend.h"
#include "SpecializeEvalPath.h"
#include "SpecializeModuleFlags.h"

#include "GraphWalk.h"

#include <rdna1/OpSchemas.h>

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <map>
#include <tuple>
#include <unordered_set>

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
  report.remainingDnnUsers = FindRemainingDnnUsers(graph);
  return report;
}

bool isConvolutionCall(const torch::jit::Node *node) {
  static const auto kConv = c10::Symbol::fromQualString(ops::kConv);
  static const auto kConvBackward = c10::Symbol::fromQualString(ops::kConvBackward);
  return node->kind() == kConv || node->kind() == kConvBackward;
}

bool isNormCall(const torch::jit::Node *node) {
  static const auto kBatchNorm = c10::Symbol::fromQualString(ops::kBatchNorm);
  static const auto kInstanceNorm = c10::Symbol::fromQualString(ops::kInstanceNorm);
  return node->kind() == kBatchNorm || node->kind() == kInstanceNorm;
}

// Convolution and norm calls in `block`, counting the larger branch of each
// prim::If: what one run calls at most, so a method split into a training and
// an eval copy (SpecializeEvalPath.h) counts its layers once.
std::pair<int, int> callsIn(torch::jit::Block *block) {
  std::pair<int, int> calls{0, 0};
  for (torch::jit::Node *node : block->nodes()) {
    calls.first += isConvolutionCall(node) ? 1 : 0;
    calls.second += isNormCall(node) ? 1 : 0;
    std::pair<int, int> inner{0, 0};
    for (torch::jit::Block *branch : node->blocks()) {
      const auto each = callsIn(branch);
      if (node->kind() != c10::prim::If)
        inner = {inner.first + each.first, inner.second + each.second};
      else if (each.first + each.second > inner.first + inner.second)
        inner = each;
    }
    calls = {calls.first + inner.first, calls.second + inner.second};
  }
  return calls;
}

// Convolution and norm calls of the module's largest own method (forward, for
// most models), inlined: the layers a user counts. (Methods call each other:
// torchvision's forward calls _forward_impl, so they are not summed.)
std::pair<int, int> countLayers(torch::jit::Module &module) {
  std::pair<int, int> largest{0, 0};
  for (const torch::jit::Method &method : module.get_methods()) {
    const std::shared_ptr<torch::jit::Graph> graph = method.graph()->copy();
    torch::jit::Inline(*graph);
    const std::pair<int, int> layers = callsIn(graph->block());
    if (layers.first + layers.second > largest.first + largest.second)
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

// The copies of `name` that get regions, and their modes, once split and
// outlined. The conv training copy gets none: a convolution outside any region
// is one autograd node that moves its operands in one DMA each way and runs its
// backward whole on the device's autograd thread, where a region per
// convolution is three nodes whose backward hands work between that thread and
// the caller's (measured in bench/RESULTS.md, seventh session).
std::vector<std::pair<std::string, RegionMode>> copiesWithRegions(const std::string &name,
                                                                  RegionMode evalMode,
                                                                  RegionMode trainingMode,
                                                                  bool evalCopy) {
  std::vector<std::pair<std::string, RegionMode>> copies{{trainingCopyName(name), trainingMode}};
  if (evalCopy)
    copies.emplace_back(evalCopyName(name), evalMode);
  return copies;
}

// Method `name` (inlined) split into a copy for training and one for eval mode,
// outlined, each given regions of its own mode; with `convCopyByBus`, a second
// training copy whose convolutions alone run on the host, each on its own
// (per-op), chosen at run time. False, and why in `decisions`, when it reads no
// training flag: then it keeps one body.
bool insertRegionsPerMode(torch::jit::Module &module, const std::string &name,
                          const std::shared_ptr<torch::jit::Graph> &graph, RegionMode evalMode,
                          RegionMode trainingMode, bool convCopyByBus, ModuleReport &report) {
  std::vector<std::string> &decisions = report.regionDecisions;
  const std::string training =
      std::string(regionModeName(trainingMode)) + (convCopyByBus ? " or conv" : "");
  // Copies for the bus alone (both modes auto): eval mode needs a copy of its
  // own only where that saves crossings, as without the bus (tried on a copy).
  const bool evalCopy =
      !convCopyByBus || evalMode != trainingMode ||
      InsertHostRegions(graph->copy(), evalMode, /*evalPath=*/true).evalSplit != nullptr;
  const EvalPath split = SpecializeEvalPath(graph, SplitWhen::AnyFlagIsRead);
  if (!split.evalBlock) {
    decisions.push_back(name + ": no copy with training-mode regions (" + training +
                        "): " + split.whyNot);
    return false;
  }
  torch::jit::Node *splitNode = split.evalBlock->owningNode();
  OutlineEvalPath(module, name, splitNode, evalCopy);
  if (convCopyByBus) {
    AddConvTrainingCopy(module, name, splitNode);
    decisions.push_back(convTrainingCopyName(name) +
                        ": no regions: each convolution moves its own operands, one autograd "
                        "node per convolution");
  }
  decisions.push_back(
      name + ": a copy for training mode with " + training + " regions" +
      (convCopyByBus ? " (conv: convolutions alone on the host, each on its own, where the runtime "
                       "finds the bus fast enough)"
                     : "") +
      (evalCopy ? " and one for eval mode with " + std::string(regionModeName(evalMode))
                : "; eval mode takes the auto copy (an eval copy would save no crossing)") +
      ", chosen by its " + std::to_string(split.flags) + " training flags");
  for (const auto &[copy, mode] : copiesWithRegions(name, evalMode, trainingMode, evalCopy)) {
    RegionStats stats = InsertHostRegions(module.get_method(copy).graph(), mode);
    report.regions += stats.regions;
    addDecisions(copy, stats, decisions);
  }
  return true;
}

// Regions must span submodule boundaries, so the module's own methods are
// inlined first, and branches on module flags folded; submodules keep their
// methods (rewritten per op above). Only `forward` gets an eval path or its
// own training regions: each copy costs load time and memory, and forward is
// what users call.
void insertRegions(torch::jit::Module &module, const RewriteOptions &options,
                   ModuleReport &report) {
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
    const bool copies = name == "forward" && CanOutlineEvalPath(module, name);
    const RegionMode mode = options.regionMode;
    const bool perMode = options.trainingRegionMode &&
                         (*options.trainingRegionMode != mode || options.convTrainingCopyByBus);
    if (copies && perMode &&
        insertRegionsPerMode(module, name, graph, mode, *options.trainingRegionMode,
                             options.convTrainingCopyByBus, report))
      continue;
    RegionStats stats = InsertHostRegions(graph, mode, copies);
    if (stats.evalSplit)
      OutlineEvalPath(module, name, stats.evalSplit);
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
    if (total(method.convolutions) + total(method.norms) > 0 || !method.dnnLibraryCalls.empty() ||
        !method.remainingDnnUsers.empty())
      report.methods.push_back(std::move(method));
  }
  if (options.regions)
    insertRegions(module, options, report);
  report.defaultBackend = options.defaultBackend;
  for (const torch::jit::Method &method : module.get_methods())
    report.backendChanged |= SetDefaultBackend(method.graph(), options.defaultBackend);
  std::tie(report.convolutionLayers, report.normLayers) = countLayers(module);
  return report;
}

} // namespace rdna1::passes
