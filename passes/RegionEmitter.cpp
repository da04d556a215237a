#include "RegionEmitter.h"

#include "OpSymbols.h"

#include "GraphWalk.h"
#include "HostOpPolicy.h"
#include "RegionValues.h"

#include <rdna1/OpSchemas.h>

#include <algorithm>
#include <unordered_map>

namespace rdna1::passes {
namespace {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

void hoist(Value *v, Node *first) {
  if (definedBefore(v, first))
    return;
  Node *def = v->node();
  if (def->kind() == c10::prim::GetAttr)
    hoist(def->input(0), first);
  def->moveBefore(first);
}

std::vector<Value *> emitListCall(Graph &graph, c10::Symbol op, const std::vector<Value *> &tensors,
                                  Value *like) {
  Value *list = graph.insertNode(graph.createList(c10::TensorType::get(), tensors))->output();
  std::vector<Value *> args{list};
  if (like)
    args.push_back(like);
  Node *call = graph.insertNode(graph.create(op, args, 1));
  call->output()->setType(c10::ListType::ofTensors());
  Node *unpack = graph.insertNode(graph.createListUnpack(call->output(), tensors.size()));
  return unpack->outputs().vec();
}

void appendUnique(std::vector<Value *> &values, Value *v) {
  if (std::find(values.begin(), values.end(), v) == values.end())
    values.push_back(v);
}

// Running statistics that a region's norms update when training: copied back to
// their device buffers after the region, when any of those norms trained.
struct StatisticsWriteBack {
  std::vector<Value *> trainingFlags;
  std::vector<Value *> deviceStats;

  explicit StatisticsWriteBack(const Region &region) {
    for (Node *node : region.nodes) {
      if (classifyOp(node) != OpClass::Norm)
        continue;
      const NormStatistics stats = normStatistics(node);
      if (isConstantFalse(stats.updatesStatistics) ||
          stats.runningMean->type()->kind() == c10::TypeKind::NoneType)
        continue;
      appendUnique(trainingFlags, stats.updatesStatistics);
      appendUnique(deviceStats, stats.runningMean);
      appendUnique(deviceStats, stats.runningVar);
    }
  }

  void emit(Graph &graph, const std::unordered_map<Value *, Value *> &hostOf) const {
    if (trainingFlags.empty())
      return;
    Value *anyTraining = trainingFlags.front();
    for (size_t i = 1; i < trainingFlags.size(); ++i)
      anyTraining = graph.insert(c10::aten::__or__, {anyTraining, trainingFlags[i]});
    Node *branch = graph.insertNode(graph.create(c10::prim::If, {anyTraining}, 0));
    torch::jit::Block *training = branch->addBlock();
    branch->addBlock();
    torch::jit::WithInsertPoint inTraining(training);
    std::vector<Value *> hostStats;
    for (Value *stat : deviceStats)
      hostStats.push_back(hostOf.at(stat));
    Value *targets =
        graph.insertNode(graph.createList(c10::TensorType::get(), deviceStats))->output();
    Value *sources =
        graph.insertNode(graph.createList(c10::TensorType::get(), hostStats))->output();
    graph.insertNode(graph.create(symbols::kCopyBack, {targets, sources}, 0));
  }
};

struct Crossings {
  std::vector<Value *> activations, params, optionalParams, outputs;
};

Crossings crossingsOf(const Region &region) {
  Crossings c;
  for (Node *node : region.nodes)
    for (Value *v : operandsOf(node)) {
      if (region.internal.count(v))
        continue;
      if (isTensor(v))
        appendUnique(isParam(v) ? c.params : c.activations, v);
      else if (isOptionalTensor(v))
        appendUnique(c.optionalParams, v);
    }
  for (Node *node : region.nodes)
    for (Value *v : node->outputs())
      if (!usesAfter(v, region).empty())
        c.outputs.push_back(v);
  return c;
}

// Emits the entry transfers; returns the host value of every crossing input.
std::unordered_map<Value *, Value *> emitEntry(Graph &graph, const Crossings &c, Node *first) {
  for (Value *v : c.params)
    hoist(v, first);
  for (Value *v : c.optionalParams)
    hoist(v, first);
  std::unordered_map<Value *, Value *> hostOf;
  torch::jit::WithInsertPoint entry(first);
  const auto hostActivations = emitListCall(graph, symbols::kToHost, c.activations, nullptr);
  for (size_t i = 0; i < c.activations.size(); ++i)
    hostOf[c.activations[i]] = hostActivations[i];
  if (!c.params.empty()) {
    const auto hostParams = emitListCall(graph, symbols::kHostParams, c.params, nullptr);
    for (size_t i = 0; i < c.params.size(); ++i)
      hostOf[c.params[i]] = hostParams[i];
  }
  for (Value *v : c.optionalParams) {
    Node *call = graph.insertNode(graph.create(symbols::kHostParam, {v}, 1));
    call->output()->setType(v->type());
    hostOf[v] = call->output();
  }
  return hostOf;
}

} // namespace

bool emitHostRegion(Graph &graph, const Region &region, std::string &whyNot) {
  const Crossings c = crossingsOf(region);
  for (Value *v : c.outputs)
    if (!isTensor(v)) {
      whyNot = "its " + v->type()->str() + " result is used after it";
      return false;
    }
  if (c.activations.empty()) {
    whyNot = "it reads no activation, only parameters: nothing to batch";
    return false;
  }
  const StatisticsWriteBack writeBack(region);
  const auto hostOf = emitEntry(graph, c, region.first());
  // Every read by a region node, in its branches too, takes the host copy.
  for (const auto &[outside, host] : hostOf) {
    const std::vector<torch::jit::Use> uses = outside->uses();
    for (const torch::jit::Use &use : uses) {
      Node *member = ancestorIn(use.user, region.block);
      if (member && region.members.count(member))
        use.user->replaceInput(use.offset, host);
    }
  }

  torch::jit::WithInsertPoint exit(region.nodes.back()->next());
  if (!c.outputs.empty()) {
    std::vector<std::vector<torch::jit::Use>> uses;
    for (Value *v : c.outputs)
      uses.push_back(usesAfter(v, region));
    const auto deviceOutputs =
        emitListCall(graph, symbols::kToDevice, c.outputs, c.activations.front());
    for (size_t i = 0; i < c.outputs.size(); ++i)
      for (const torch::jit::Use &use : uses[i])
        use.user->replaceInput(use.offset, deviceOutputs[i]);
  }
  writeBack.emit(graph, hostOf);
  return true;
}

} // namespace rdna1::passes
