#include "InsertHostRegions.h"

#include "GraphWalk.h"

#include <rdna1/OpSchemas.h>

#include <torch/csrc/jit/ir/alias_analysis.h>
#include <torch/csrc/jit/ir/constants.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace rdna1::passes {
namespace {

using torch::jit::AliasDb;
using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
using torch::jit::ValueSet;

// What an op costs where (see the cost model in the header).
enum class OpClass {
  Conv,      // must run on the host
  Norm,      // rdna1 batch/instance norm: light, with running-statistics rules
  Light,     // elementwise and norms: cheap anywhere, keeps the size
  Shrinking, // pooling and means: the result is smaller than the input
  Shape,     // views, concatenation, padding: no arithmetic
  List,      // list plumbing for cat/split
  Heavy,     // matrix products and attention: the device's job under Auto
};

const std::unordered_map<std::string, OpClass> &opClasses() {
  static const auto *classes = [] {
    auto *m = new std::unordered_map<std::string, OpClass>{
        {ops::kConv, OpClass::Conv},         {ops::kBatchNorm, OpClass::Norm},
        {ops::kInstanceNorm, OpClass::Norm}, {"prim::ListConstruct", OpClass::List},
        {"prim::ListUnpack", OpClass::List},
    };
    for (const char *name :
         {"relu",         "relu_",      "relu6",       "gelu",       "silu",
          "silu_",        "sigmoid",    "sigmoid_",    "tanh",       "tanh_",
          "hardtanh",     "hardtanh_",  "hardswish",   "hardswish_", "hardsigmoid",
          "hardsigmoid_", "leaky_relu", "leaky_relu_", "elu",        "elu_",
          "mish",         "add",        "add_",        "sub",        "sub_",
          "mul",          "mul_",       "div",         "div_",       "clamp",
          "clamp_",       "neg",        "dropout",     "dropout_",   "feature_dropout",
          "layer_norm",   "group_norm", "contiguous"})
      m->emplace(std::string("aten::") + name, OpClass::Light);
    for (const char *name : {"max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d",
                             "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
                             "adaptive_avg_pool3d", "adaptive_max_pool2d", "mean"})
      m->emplace(std::string("aten::") + name, OpClass::Shrinking);
    for (const char *name : {"flatten", "view", "reshape", "permute", "transpose", "squeeze",
                             "unsqueeze", "cat", "constant_pad_nd", "pad", "upsample_nearest1d",
                             "upsample_nearest2d", "upsample_bilinear2d", "chunk", "split"})
      m->emplace(std::string("aten::") + name, OpClass::Shape);
    for (const char *name : {"linear", "matmul", "mm", "bmm", "addmm", "einsum", "softmax",
                             "scaled_dot_product_attention"})
      m->emplace(std::string("aten::") + name, OpClass::Heavy);
    return m;
  }();
  return *classes;
}

c10::optional<OpClass> classify(const Node *node) {
  const auto found = opClasses().find(node->kind().toQualString());
  return found == opClasses().end() ? c10::nullopt : c10::make_optional(found->second);
}

// Ops whose result does not depend on where the tensor lives.
bool readsOnlyMetadata(const Node *node) {
  static const std::unordered_set<std::string> kinds{
      "aten::size",  "aten::dim",    "aten::numel",     "aten::len",
      "prim::dtype", "aten::__is__", "aten::__isnot__", "aten::is_floating_point"};
  return kinds.count(node->kind().toQualString()) != 0;
}

bool isTensor(const Value *v) {
  return v->type()->kind() == c10::TypeKind::TensorType;
}

bool isOptionalTensor(const Value *v) {
  const auto optional = v->type()->cast<c10::OptionalType>();
  return optional && optional->getElementType()->kind() == c10::TypeKind::TensorType;
}

bool isTensorList(const Value *v) {
  const auto list = v->type()->cast<c10::ListType>();
  return list && list->getElementType()->kind() == c10::TypeKind::TensorType;
}

bool isConstantFalse(Value *v) {
  const auto constant = torch::jit::toIValue(v);
  return constant && constant->isBool() && !constant->toBool();
}

// Module attributes and constants: their host copies are cached by the runtime.
bool isParam(const Value *v) {
  return v->node()->kind() == c10::prim::GetAttr || v->node()->kind() == c10::prim::Constant;
}

bool isDropout(const Node *node) {
  const std::string kind = node->kind().toQualString();
  return kind == "aten::dropout" || kind == "aten::dropout_" || kind == "aten::feature_dropout";
}

// Whether the node's schema says it writes its `index`-th argument.
bool writesArgument(const Node *node, size_t index) {
  const c10::FunctionSchema *schema = node->maybeSchema();
  if (!schema || index >= schema->arguments().size())
    return false;
  const auto *alias = schema->arguments()[index].alias_info();
  return alias != nullptr && alias->isWrite();
}

// Whether two values name the same tensor for sure: the same value, or reads of
// the same attribute path of the same object.
bool refersToSame(const Value *a, const Value *b) {
  if (a == b)
    return true;
  const Node *x = a->node();
  const Node *y = b->node();
  return x->kind() == c10::prim::GetAttr && y->kind() == c10::prim::GetAttr &&
         x->s(c10::attr::name) == y->s(c10::attr::name) && refersToSame(x->input(0), y->input(0));
}

// The node of `block` that contains `node` (itself, or a node whose blocks do).
Node *ancestorIn(Node *node, const Block *block) {
  while (node && node->owningBlock() != block)
    node = node->owningBlock()->owningNode();
  return node;
}

// Whether `v` exists at `first` without moving anything. A value a region node
// reads is visible in the region's block: defined there or in an enclosing one.
bool definedBefore(const Value *v, Node *first) {
  const Node *def = v->node();
  if (def->kind() == c10::prim::Param || def->owningBlock() != first->owningBlock())
    return true;
  return def->isBefore(first);
}

// A parameter whose producers (attribute reads, constants) can move before `first`.
bool hoistable(const Value *v, Node *first) {
  if (definedBefore(v, first))
    return true;
  const Node *def = v->node();
  if (def->kind() == c10::prim::Constant)
    return true;
  return def->kind() == c10::prim::GetAttr && hoistable(def->input(0), first);
}

void hoist(Value *v, Node *first) {
  if (definedBefore(v, first))
    return;
  Node *def = v->node();
  if (def->kind() == c10::prim::GetAttr)
    hoist(def->input(0), first);
  def->moveBefore(first);
}

struct Region {
  Block *block = nullptr;
  std::vector<Node *> nodes;
  std::unordered_set<const Node *> members;
  std::unordered_set<const Value *> internal; // values the region's nodes define
  ValueSet inputs;                            // tensors from outside that region nodes read
  // Values read or made by the region, for the alias check of neutral nodes.
  // Module attributes and graph inputs are left out: the alias analysis lets
  // all of them alias each other, so a neutral `num_batches_tracked.add_(1)`
  // would end every region; direct writes to them are checked by schema.
  ValueSet touched;
  // Values written in place by neutral nodes inside the run: a later region node
  // may not read them through a host copy taken at the region's entry.
  std::vector<Value *> neutralWrites;
  bool hasConv = false;

  explicit Region(Block *b) : block(b) {}
  bool empty() const { return nodes.empty(); }
  Node *first() const { return nodes.front(); }

  void add(Node *node) {
    nodes.push_back(node);
    members.insert(node);
    hasConv = hasConv || classify(node) == OpClass::Conv;
    for (Value *v : node->inputs())
      if (!internal.count(v) && (isTensor(v) || isOptionalTensor(v))) {
        inputs.insert(v);
        if (!isParam(v) && v->node()->kind() != c10::prim::Param)
          touched.insert(v);
      }
    for (Value *v : node->outputs()) {
      internal.insert(v);
      touched.insert(v);
    }
  }
};

// Uses of `v` that come after the region, where the device copy must be read.
std::vector<torch::jit::Use> usesAfter(Value *v, const Region &region) {
  std::vector<torch::jit::Use> after;
  Node *last = region.nodes.back();
  for (const torch::jit::Use &use : v->uses()) {
    if (region.members.count(use.user))
      continue;
    Node *here = ancestorIn(use.user, region.block);
    if (use.user == region.block->return_node() || (here && here->isAfter(last)))
      after.push_back(use);
  }
  return after;
}

class RegionFinder {
public:
  RegionFinder(const std::shared_ptr<Graph> &graph, RegionMode mode)
      : aliasDb_(graph), mode_(mode) {}

  void find(Block *block, std::vector<Region> &out) {
    Region current(block);
    for (Node *node : block->nodes()) {
      if (canHost(node, current)) {
        current.add(node);
        continue;
      }
      if (!current.empty() && isNeutral(node, current)) {
        recordWrites(node, current);
        continue;
      }
      close(current, out);
      current = Region(block);
      if (canHost(node, current)) {
        current.add(node);
        continue;
      }
      for (Block *inner : node->blocks())
        find(inner, out);
    }
    close(current, out);
  }

private:
  bool inputsAvailable(Node *node, const Region &region) const {
    for (Value *v : node->inputs()) {
      if (region.internal.count(v))
        continue;
      if (isTensorList(v))
        return false; // a list built outside cannot cross as a whole
      if (!isTensor(v) && !isOptionalTensor(v))
        continue;
      if (isOptionalTensor(v) && !isParam(v))
        return false;
      if (writtenInRun(v, region))
        return false;
      if (!region.empty() && !definedBefore(v, region.first()) &&
          !(isParam(v) && hoistable(v, region.first())))
        return false;
    }
    return true;
  }

  bool writtenInRun(Value *v, const Region &region) const {
    for (Value *written : region.neutralWrites) {
      // Module attributes and graph inputs all may alias each other in the
      // alias analysis; for them only a write to the same tensor counts.
      const bool wildcard = isParam(v) || v->node()->kind() == c10::prim::Param;
      if (refersToSame(written, v) || (!wildcard && aliasDb_.mayAlias(written, v)))
        return true;
    }
    return false;
  }

  static void recordWrites(Node *node, Region &region) {
    std::vector<Node *> nodes{node};
    for (Block *inner : node->blocks())
      collectNodes(inner, nodes);
    for (Node *n : nodes)
      for (size_t i = 0; i < n->inputs().size(); ++i)
        if (writesArgument(n, i))
          region.neutralWrites.push_back(n->input(i));
  }

  // Views of a region input stay on the device: hosting them would turn the
  // view into a copy and lose writes made through it later.
  static bool viewsRegionInput(Node *node, const Region &region) {
    const auto cls = classify(node);
    const bool view =
        cls == OpClass::Shape || node->kind().toQualString() == std::string("aten::contiguous");
    return view && !node->inputs().empty() && !region.internal.count(node->input(0));
  }

  // Writes go only to values the region made, none of which alias its inputs.
  bool writesOnlyInternal(Node *node, const Region &region) const {
    if (!aliasDb_.isMutable(node))
      return true;
    for (Value *v : node->inputs()) {
      if (!aliasDb_.writesToAlias(node, ValueSet{v}))
        continue;
      if (!region.internal.count(v) || aliasDb_.mayAlias(ValueSet{v}, region.inputs))
        return false;
    }
    return true;
  }

  // Running statistics that are module buffers are copied back after the
  // region; anything else that a training-mode norm would update stays put.
  static bool normAllowed(Node *node) {
    Value *runningMean = node->input(3);
    if (runningMean->type()->kind() == c10::TypeKind::NoneType || isConstantFalse(node->input(5)))
      return true;
    // Optional[Tensor] statistics could be None at run time: no copy-back for those.
    return isParam(runningMean) && isParam(node->input(4)) && isTensor(runningMean) &&
           isTensor(node->input(4));
  }

  bool canHost(Node *node, const Region &region) const {
    const auto cls = classify(node);
    if (!cls || (*cls == OpClass::Heavy && mode_ != RegionMode::Max) ||
        (*cls != OpClass::Conv && mode_ == RegionMode::ConvOnly))
      return false;
    if (isDropout(node) && !isConstantFalse(node->input(2)))
      return false; // randomness stays where it was
    for (const Value *out : node->outputs())
      if (!isTensor(out) && !(*cls == OpClass::List && isTensorList(out)))
        return false;
    if (!inputsAvailable(node, region) || viewsRegionInput(node, region))
      return false;
    if (*cls == OpClass::Norm)
      return node->inputs().size() == 9 && normAllowed(node);
    return writesOnlyInternal(node, region);
  }

  // A node that may stay between region nodes: it reads region tensors only
  // for metadata, writes nothing the region reads or makes, and holds no
  // convolution of its own.
  bool isNeutral(Node *node, const Region &region) const {
    std::vector<Node *> nodes{node};
    for (Block *inner : node->blocks())
      collectNodes(inner, nodes);
    for (Node *n : nodes) {
      if (n->kind() == c10::prim::SetAttr || n->kind() == c10::prim::CallMethod ||
          n->kind() == c10::prim::CallFunction || classify(n) == OpClass::Conv)
        return false;
      for (size_t i = 0; i < n->inputs().size(); ++i) {
        Value *v = n->input(i);
        if (region.internal.count(v) && !readsOnlyMetadata(n))
          return false;
        if (writesArgument(n, i) &&
            std::any_of(region.inputs.begin(), region.inputs.end(),
                        [v](const Value *in) { return refersToSame(in, v); }))
          return false;
      }
    }
    return !aliasDb_.writesToAlias(node, region.touched);
  }

  // Results leave as copies: results that alias an input or each other would
  // lose writes made later through one of them.
  bool outputsAlias(const Region &region) const {
    std::vector<Value *> outputs;
    for (Node *node : region.nodes)
      for (Value *v : node->outputs())
        if (!usesAfter(v, region).empty())
          outputs.push_back(v);
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (aliasDb_.mayAlias(ValueSet{outputs[i]}, region.inputs))
        return true;
      for (size_t j = i + 1; j < outputs.size(); ++j)
        if (aliasDb_.mayAlias(outputs[i], outputs[j]))
          return true;
    }
    return false;
  }

  // Applies the cost model's edge rules, then re-validates the trimmed region.
  void close(const Region &region, std::vector<Region> &out) const {
    std::vector<Node *> nodes = region.nodes;
    if (mode_ == RegionMode::Auto) {
      while (!nodes.empty() && classify(nodes.back()) != OpClass::Conv &&
             classify(nodes.back()) != OpClass::Shrinking)
        nodes.pop_back();
      while (!nodes.empty() && classify(nodes.front()) != OpClass::Conv)
        nodes.erase(nodes.begin());
    }
    Region trimmed(region.block);
    for (Node *node : nodes) {
      if (!canHost(node, trimmed))
        return; // trimming broke an assumption: leave these convolutions per-op
      trimmed.add(node);
    }
    if (trimmed.hasConv && !outputsAlias(trimmed))
      out.push_back(std::move(trimmed));
  }

  AliasDb aliasDb_;
  RegionMode mode_;
};

std::vector<Value *> emitListCall(Graph &graph, const char *op, const std::vector<Value *> &tensors,
                                  Value *like) {
  Value *list = graph.insertNode(graph.createList(c10::TensorType::get(), tensors))->output();
  std::vector<Value *> args{list};
  if (like)
    args.push_back(like);
  Node *call = graph.insertNode(graph.create(c10::Symbol::fromQualString(op), args, 1));
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
      if (classify(node) != OpClass::Norm || isConstantFalse(node->input(5)) ||
          node->input(3)->type()->kind() == c10::TypeKind::NoneType)
        continue;
      appendUnique(trainingFlags, node->input(5));
      appendUnique(deviceStats, node->input(3));
      appendUnique(deviceStats, node->input(4));
    }
  }

  void emit(Graph &graph, const std::unordered_map<Value *, Value *> &hostOf) const {
    if (trainingFlags.empty())
      return;
    Value *anyTraining = trainingFlags.front();
    for (size_t i = 1; i < trainingFlags.size(); ++i)
      anyTraining = graph.insert(c10::aten::__or__, {anyTraining, trainingFlags[i]});
    Node *branch = graph.insertNode(graph.create(c10::prim::If, {anyTraining}, 0));
    Block *training = branch->addBlock();
    branch->addBlock();
    torch::jit::WithInsertPoint inTraining(training);
    std::vector<Value *> hostStats;
    for (Value *stat : deviceStats)
      hostStats.push_back(hostOf.at(stat));
    Value *targets =
        graph.insertNode(graph.createList(c10::TensorType::get(), deviceStats))->output();
    Value *sources =
        graph.insertNode(graph.createList(c10::TensorType::get(), hostStats))->output();
    graph.insertNode(
        graph.create(c10::Symbol::fromQualString(ops::kCopyBack), {targets, sources}, 0));
  }
};

bool applyRegion(Graph &graph, const Region &region) {
  std::vector<Value *> activations, params, optionalParams, outputs;
  for (Node *node : region.nodes)
    for (Value *v : node->inputs()) {
      if (region.internal.count(v))
        continue;
      if (isTensor(v))
        appendUnique(isParam(v) ? params : activations, v);
      else if (isOptionalTensor(v))
        appendUnique(optionalParams, v);
    }
  for (Node *node : region.nodes)
    for (Value *v : node->outputs())
      if (!usesAfter(v, region).empty()) {
        if (!isTensor(v))
          return false;
        outputs.push_back(v);
      }
  if (activations.empty())
    return false;
  const StatisticsWriteBack writeBack(region);

  Node *first = region.first();
  for (Value *v : params)
    hoist(v, first);
  for (Value *v : optionalParams)
    hoist(v, first);

  std::unordered_map<Value *, Value *> hostOf;
  {
    torch::jit::WithInsertPoint entry(first);
    const auto hostActivations = emitListCall(graph, ops::kToHost, activations, nullptr);
    for (size_t i = 0; i < activations.size(); ++i)
      hostOf[activations[i]] = hostActivations[i];
    if (!params.empty()) {
      const auto hostParams = emitListCall(graph, ops::kHostParams, params, nullptr);
      for (size_t i = 0; i < params.size(); ++i)
        hostOf[params[i]] = hostParams[i];
    }
    for (Value *v : optionalParams) {
      Node *call =
          graph.insertNode(graph.create(c10::Symbol::fromQualString(ops::kHostParam), {v}, 1));
      call->output()->setType(v->type());
      hostOf[v] = call->output();
    }
  }
  for (Node *node : region.nodes)
    for (size_t i = 0; i < node->inputs().size(); ++i) {
      const auto found = hostOf.find(node->input(i));
      if (found != hostOf.end())
        node->replaceInput(i, found->second);
    }

  Value *like = activations.front();
  torch::jit::WithInsertPoint exit(region.nodes.back()->next());
  if (!outputs.empty()) {
    std::vector<std::vector<torch::jit::Use>> uses;
    for (Value *v : outputs)
      uses.push_back(usesAfter(v, region));
    const auto deviceOutputs = emitListCall(graph, ops::kToDevice, outputs, like);
    for (size_t i = 0; i < outputs.size(); ++i)
      for (const torch::jit::Use &use : uses[i])
        use.user->replaceInput(use.offset, deviceOutputs[i]);
  }
  writeBack.emit(graph, hostOf);
  return true;
}

} // namespace

bool HasHostRegions(const std::shared_ptr<Graph> &graph) {
  static const auto kToHost = c10::Symbol::fromQualString(ops::kToHost);
  for (Node *node : allNodes(graph))
    if (node->kind() == kToHost)
      return true;
  return false;
}

RegionStats InsertHostRegions(const std::shared_ptr<Graph> &graph, RegionMode mode) {
  RegionStats stats;
  if (HasHostRegions(graph))
    return stats;
  std::vector<Region> regions;
  RegionFinder(graph, mode).find(graph->block(), regions);
  for (const Region &region : regions)
    if (applyRegion(*graph, region)) {
      ++stats.regions;
      stats.hostNodes += static_cast<int>(region.nodes.size());
    }
  return stats;
}

} // namespace rdna1::passes
