#include "RegionFinder.h"

#include "GraphWalk.h"
#include "HostOpPolicy.h"
#include "RegionCostModel.h"
#include "RegionValues.h"
#include "StorageWrites.h"

#include <torch/csrc/jit/ir/alias_analysis.h>

#include <algorithm>
#include <optional>
#include <unordered_set>

namespace rdna1::passes {
namespace {

using torch::jit::AliasDb;
using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
using torch::jit::ValueSet;

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

// A parameter whose producers (attribute reads, constants) can move before `first`.
bool hoistable(const Value *v, Node *first) {
  if (definedBefore(v, first))
    return true;
  const Node *def = v->node();
  if (def->kind() == c10::prim::Constant)
    return true;
  return def->kind() == c10::prim::GetAttr && hoistable(def->input(0), first);
}

// Ops whose outputs may be tensor lists: list plumbing, and splitting.
bool mayMakeTensorList(const Node *node, OpClass cls) {
  static const c10::Symbol chunk = c10::Symbol::fromQualString("aten::chunk");
  static const c10::Symbol split = c10::Symbol::fromQualString("aten::split");
  return cls == OpClass::List || node->kind() == chunk || node->kind() == split;
}

using Reason = std::optional<std::string>;

// Whether `node`'s first output shares its first input's storage: a view, an
// in-place op, or list plumbing that hands back its own list.
bool sharesItsInput(const Node *node) {
  static const std::unordered_set<c10::Symbol> copies{
      c10::Symbol::fromQualString("aten::cat"), c10::Symbol::fromQualString("aten::stack"),
      c10::Symbol::fromQualString("aten::constant_pad_nd"),
      c10::Symbol::fromQualString("aten::pad")};
  const auto cls = classifyOp(node);
  const std::string name = node->kind().toUnqualString();
  const bool inPlace = !name.empty() && name.back() == '_';
  const bool view = (cls == OpClass::Shape && !copies.count(node->kind())) ||
                    node->kind() == c10::aten::contiguous || isDropout(node);
  const bool returnsItsList = cls == OpClass::List && node->kind() != c10::prim::ListConstruct;
  return (inPlace || view || returnsItsList) && !node->inputs().empty();
}

// Ops that share their input's storage or copy it depending on its strides.
// Host tensors are channels-last, so on the host they may copy where the
// model's shares, and a later write through one would miss the other: they
// are hosted only where nothing writes to that storage.
Reason stridesDecideSharing(Node *node) {
  static const std::unordered_set<c10::Symbol> kinds{c10::aten::reshape, c10::aten::flatten,
                                                     c10::aten::contiguous};
  if (!kinds.count(node->kind()) || !StorageMayBeWritten(node->output()))
    return std::nullopt;
  return std::string("it shares its input's storage or copies it by strides, which differ on the "
                     "host (channels-last), and something writes to that storage");
}

// A view-like op: its result may share the storage of its first input.
bool mayViewItsInput(const Node *node, c10::optional<OpClass> cls) {
  return cls == OpClass::Shape || node->kind() == c10::aten::contiguous;
}

// The class an edge rule sees: a hosted branch (prim::If) counts as light work.
OpClass edgeClass(const Node *node) {
  return node->kind() == c10::prim::If ? OpClass::Light : *classifyOp(node);
}

class RegionFinder {
public:
  RegionFinder(const std::shared_ptr<Graph> &graph, std::vector<std::string> &decisions)
      : aliasDb_(graph), decisions_(decisions) {}

  void find(Block *block, std::vector<Region> &out) {
    Region current(block);
    for (Node *node : block->nodes()) {
      const Reason whyNot = whyNotHosted(node, current);
      if (!whyNot) {
        current.add(node);
        continue;
      }
      const Reason notNeutral = current.empty() ? whyNot : whyNotNeutral(node, current);
      if (!notNeutral) {
        recordWrites(node, current);
        continue;
      }
      if (current.hasConv)
        log("region ends before " + describeNode(node) + ": " + *whyNot +
            (notNeutral == whyNot ? ""
                                  : "; and it cannot stay between region nodes: " + *notNeutral));
      close(current, out);
      current = Region(block);
      if (!whyNotHosted(node, current)) {
        current.add(node);
        continue;
      }
      for (Block *inner : node->blocks())
        find(inner, out);
    }
    close(current, out);
  }

private:
  void log(const std::string &text) const { decisions_.push_back(text); }

  Reason inputsUnavailable(Node *node, const Region &region) const {
    for (Value *v : operandsOf(node)) {
      if (region.internal.count(v))
        continue;
      if (isTensorList(v))
        return "it reads a tensor list made outside the region (a list cannot cross as a whole)";
      if (!isTensor(v) && !isOptionalTensor(v))
        continue;
      if (isOptionalTensor(v) && !isParam(v))
        return "it reads an optional tensor that is not a module attribute";
      if (writtenInRun(v, region))
        return "it reads %" + v->debugName() + ", written in place between region nodes";
      if (!region.empty() && !definedBefore(v, region.first()) &&
          !(isParam(v) && hoistable(v, region.first())))
        return "it reads %" + v->debugName() + ", made after the region began";
    }
    return std::nullopt;
  }

  bool writtenInRun(Value *v, const Region &region) const {
    for (Value *written : region.neutralWrites) {
      // Module attributes and graph inputs all may alias each other in the
      // alias analysis; for them only a write to the same tensor counts.
      const bool wildcard = isParam(v) || v->node()->kind() == c10::prim::Param;
      if (refersToSame(written, v))
        return true;
      // A write through a module attribute reaches only tensors that may
      // share its storage; the alias analysis also says yes for every tensor
      // that was put into a list or dict (it makes them all wildcards).
      if (isParam(written) && !mayShareModuleState(v))
        continue;
      if (!wildcard && aliasDb_.mayAlias(written, v))
        return true;
    }
    return false;
  }

  // Whether `v` may share storage with a module attribute or a graph input:
  // false only for what an op made fresh, or a view of that.
  static bool mayShareModuleState(const Value *v) {
    const Node *node = v->node();
    if (node->kind() == c10::prim::GetAttr || node->kind() == c10::prim::Param)
      return true;
    const c10::FunctionSchema *schema = node->maybeSchema();
    if (!schema || node->kind().is_prim())
      return true; // list, dict and control-flow outputs: unknown
    for (size_t i = 0; i < schema->returns().size(); ++i) {
      const auto *alias = schema->returns()[i].alias_info();
      if (alias == nullptr)
        continue;
      // A view or an in-place result: what its input shares.
      return node->inputs().empty() || mayShareModuleState(node->input(0));
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
  static bool viewsRegionInput(Node *node, OpClass cls, const Region &region) {
    return mayViewItsInput(node, cls) && !node->inputs().empty() &&
           !region.internal.count(node->input(0));
  }

  // Writes go only to values the region made, none of which alias its inputs.
  bool writesOnlyInternal(Node *node, const Region &region) const {
    if (!aliasDb_.isMutable(node))
      return true;
    for (Value *v : node->inputs()) {
      if (!aliasDb_.writesToAlias(node, ValueSet{v}))
        continue;
      // Only into storage the region made (the alias analysis would also
      // refuse any tensor that shares a list or dict with a region input).
      if (!region.internal.count(v) || !region.internal.count(storageRoot(v, region)))
        return false;
    }
    return true;
  }

  // Running statistics that are module buffers are copied back after the
  // region; anything else that a training-mode norm would update stays put.
  static bool normAllowed(Node *node) {
    const NormStatistics stats = normStatistics(node);
    if (stats.runningMean->type()->kind() == c10::TypeKind::NoneType ||
        isConstantFalse(stats.updatesStatistics))
      return true;
    // Optional[Tensor] statistics could be None at run time: no copy-back for those.
    return isParam(stats.runningMean) && isParam(stats.runningVar) && isTensor(stats.runningMean) &&
           isTensor(stats.runningVar);
  }

  // Why `node` may not join `region`, or nothing when it may.
  Reason whyNotHosted(Node *node, const Region &region) const {
    if (node->kind() == c10::prim::If)
      return whyNotHostedBranch(node, region);
    const auto cls = classifyOp(node);
    if (!cls)
      return std::string("no host kernel is listed for it (HostOpPolicy)");
    if (*cls == OpClass::Heavy)
      return std::string("matrix products run on the device");
    if (isDropout(node) && !isConstantFalse(dropoutTrainFlag(node)))
      return std::string("dropout that may train stays where its random numbers are drawn");
    for (const Value *out : node->outputs())
      if (!isTensor(out) && !(mayMakeTensorList(node, *cls) && isTensorList(out)))
        return "it makes a " + out->type()->str();
    if (Reason unavailable = inputsUnavailable(node, region))
      return unavailable;
    if (viewsRegionInput(node, *cls, region))
      return std::string("it views a tensor from outside the region (writes through the view "
                         "would miss the host copy)");
    if (Reason sharing = stridesDecideSharing(node))
      return sharing;
    if (*cls == OpClass::Norm && !normAllowed(node))
      return std::string("its running statistics are not module buffers that can be copied "
                         "back");
    if (*cls != OpClass::Norm && !writesOnlyInternal(node, region))
      return std::string("it writes a tensor the region did not make");
    return std::nullopt;
  }

  // An If whose branches hold only host work (F.interpolate's checks around an
  // upsample) joins the region whole, so it does not split it. Its branches
  // may hold light, shrinking, growing and shape ops, metadata reads, scalar
  // arithmetic and exceptions; no convolution, norm or write, and every tensor
  // a branch returns is one it made.
  Reason whyNotHostedBranch(Node *node, const Region &region) const {
    const bool makesTensors = !node->outputs().empty() &&
                              std::all_of(node->outputs().begin(), node->outputs().end(), isTensor);
    if (!makesTensors)
      return std::string("no host kernel is listed for it (HostOpPolicy)");
    std::vector<Node *> nested;
    for (Block *inner : node->blocks())
      collectNodes(inner, nested);
    for (Node *n : nested)
      if (Reason inside = whyNotHostedInBranch(n, node, region))
        return "its branches hold " + describeNode(n) + ", which stays on the device: " + *inside;
    for (Block *inner : node->blocks())
      for (Value *out : inner->outputs())
        if (out->node()->kind() != c10::prim::Uninitialized &&
            (!isWithin(out->node(), node) || out->node()->kind() == c10::prim::If ||
             sharesItsInput(out->node())))
          return "a branch returns %" + out->debugName() +
                 ", which it did not make (a copy would lose the alias)";
    return inputsUnavailable(node, region);
  }

  Reason whyNotHostedInBranch(Node *n, const Node *branch, const Region &region) const {
    if (n->kind() == c10::prim::If || n->kind() == c10::prim::Uninitialized)
      return std::nullopt; // a nested branch's nodes are checked one by one
    if (!n->blocks().empty() || n->kind() == c10::prim::SetAttr ||
        n->kind() == c10::prim::CallMethod || n->kind() == c10::prim::CallFunction)
      return std::string("loops and calls stay");
    if (aliasDb_.isMutable(n))
      return std::string("it writes in place");
    const auto cls = classifyOp(n);
    const bool makesTensor =
        std::any_of(n->outputs().begin(), n->outputs().end(), [](const Value *v) {
          return isTensor(v) || isTensorList(v) || isOptionalTensor(v);
        });
    if (!cls) {
      if (makesTensor)
        return std::string("no host kernel is listed for it (HostOpPolicy)");
      for (const Value *v : n->inputs())
        if ((isTensor(v) || isTensorList(v) || isOptionalTensor(v)) && !readsOnlyMetadata(n))
          return std::string("it reads a tensor for more than its metadata");
      return std::nullopt;
    }
    if (*cls == OpClass::Conv || *cls == OpClass::Norm)
      return std::string("convolutions and norms in branches are not hosted");
    if (*cls == OpClass::Heavy)
      return std::string("matrix products run on the device");
    if (isDropout(n) && !isConstantFalse(dropoutTrainFlag(n)))
      return std::string("dropout that may train stays where its random numbers are drawn");
    for (const Value *out : n->outputs())
      if (!isTensor(out))
        return "it makes a " + out->type()->str();
    if (mayViewItsInput(n, cls) && !n->inputs().empty() && !isWithin(n->input(0)->node(), branch) &&
        !region.internal.count(n->input(0)))
      return std::string("it views a tensor from outside the region");
    if (Reason sharing = stridesDecideSharing(n))
      return sharing;
    return std::nullopt;
  }

  // A node that may stay between region nodes: it reads region tensors only
  // for metadata, writes nothing the region reads or makes, and holds no
  // convolution of its own. Says why not, when not.
  Reason whyNotNeutral(Node *node, const Region &region) const {
    std::vector<Node *> nodes{node};
    for (Block *inner : node->blocks())
      collectNodes(inner, nodes);
    for (Node *n : nodes) {
      if (n->kind() == c10::prim::SetAttr || n->kind() == c10::prim::CallMethod ||
          n->kind() == c10::prim::CallFunction || classifyOp(n) == OpClass::Conv)
        return describeNode(n) + " inside it cannot stay between region nodes";
      for (size_t i = 0; i < n->inputs().size(); ++i) {
        Value *v = n->input(i);
        if (region.internal.count(v) && !readsOnlyMetadata(n))
          return describeNode(n) + " inside it reads the region's %" + v->debugName();
        if (writesArgument(n, i) &&
            std::any_of(region.inputs.begin(), region.inputs.end(),
                        [v](const Value *in) { return refersToSame(in, v); }))
          return describeNode(n) + " inside it writes the region's input %" + v->debugName();
      }
    }
    ValueSet sharedInputs; // region inputs a write through a module attribute could reach
    for (const Value *v : region.touchedInputs)
      if (mayShareModuleState(v))
        sharedInputs.insert(v);
    for (Node *n : nodes) {
      if (!n->blocks().empty())
        continue; // an If or Loop writes only through the nodes inside it, checked one by one
      // Region-made tensors are fresh (views of region inputs are not hosted),
      // so a write through a module attribute cannot reach them; the alias
      // analysis cannot tell, as every tensor put into a list is a wildcard.
      const ValueSet &exposed = writesOnlyModuleAttributes(n) ? sharedInputs : region.touched;
      if (aliasDb_.writesToAlias(n, exposed))
        return describeNode(n) + " inside it may write a tensor the region reads or makes";
    }
    return std::nullopt;
  }

  // Whether every write of `node` goes, by its schema, to a module attribute.
  bool writesOnlyModuleAttributes(Node *node) const {
    if (!aliasDb_.isMutable(node))
      return true;
    if (!node->maybeSchema())
      return false;
    for (size_t i = 0; i < node->inputs().size(); ++i)
      if (writesArgument(node, i) && node->input(i)->node()->kind() != c10::prim::GetAttr)
        return false;
    return true;
  }

  // The tensor whose storage `v` shares: for a value the region made, through
  // the views, in-place ops and list plumbing that produced it; any other
  // value is its own. (The alias analysis cannot answer this for tensors that
  // went into a list: it makes them all wildcards.)
  static const Value *storageRoot(const Value *v, const Region &region) {
    if (!region.internal.count(v))
      return v;
    const Node *node = v->node();
    if (node->kind() == c10::prim::ListUnpack) {
      const Node *list = node->input(0)->node();
      if (list->kind() == c10::prim::ListConstruct)
        return storageRoot(list->input(v->offset()), region);
      return storageRoot(node->input(0), region);
    }
    return sharesItsInput(node) ? storageRoot(node->input(0), region) : v;
  }

  // Results leave as copies: results that share storage with an input or with
  // each other would lose writes made later through one of them.
  static bool outputsAlias(const Region &region) {
    std::unordered_set<const Value *> roots;
    for (Node *node : region.nodes)
      for (Value *v : node->outputs()) {
        if (usesAfter(v, region).empty())
          continue;
        const Value *root = storageRoot(v, region);
        if (!region.internal.count(root) || !roots.insert(root).second)
          return true;
      }
    return false;
  }

  // Tensor inputs of `node` that `made` holds (region-made) or does not.
  static int countInputs(const Node *node, const std::unordered_set<const Value *> &made,
                         bool inside) {
    int count = 0;
    for (const Value *v : operandsOf(const_cast<Node *>(node)))
      if ((isTensor(v) || isTensorList(v)) && !isParam(v) && made.count(v) == (inside ? 1 : 0))
        ++count;
    return count;
  }

  // The cost model's edge rules (RegionCostModel.h): drop edge ops that cost
  // less on the device than on the host.
  std::vector<Node *> trimEdges(std::vector<Node *> nodes) const {
    // What the region makes; a trimmed last node's outputs feed no node before it.
    std::unordered_set<const Value *> made;
    for (Node *n : nodes)
      for (const Value *v : n->outputs())
        made.insert(v);
    while (!nodes.empty()) {
      Node *last = nodes.back();
      const auto choice = cost::atExit(edgeClass(last), countInputs(last, made, true));
      if (choice.hostIt)
        break;
      log("exit edge: " + describeNode(last) + " runs on the device after the region (" +
          cost::explain(choice) + ")");
      nodes.pop_back();
    }
    while (!nodes.empty()) {
      Node *first = nodes.front();
      const auto choice = cost::atEntry(edgeClass(first), countInputs(first, {}, false));
      if (choice.hostIt)
        break;
      log("entry edge: " + describeNode(first) + " runs on the device before the region (" +
          cost::explain(choice) + ")");
      nodes.erase(nodes.begin());
    }
    return nodes;
  }

  // A tensor list cannot cross the bus: cut the region before the first node
  // whose list is used after it.
  std::vector<Node *> cutEscapingLists(const std::vector<Node *> &nodes) const {
    Region region(nodes.front()->owningBlock());
    for (Node *n : nodes)
      region.add(n);
    for (size_t i = 0; i < nodes.size(); ++i)
      for (Value *v : nodes[i]->outputs())
        if (!isTensor(v) && !usesAfter(v, region).empty()) {
          log("region cut before " + describeNode(nodes[i]) + ": its " + v->type()->str() +
              " is used after the region and cannot cross the bus");
          return {nodes.begin(), nodes.begin() + static_cast<std::ptrdiff_t>(i)};
        }
    return nodes;
  }

  // Applies the edge rules, then re-validates what is left.
  void close(const Region &region, std::vector<Region> &out) const {
    if (!region.hasConv)
      return;
    std::vector<Node *> nodes = region.nodes;
    for (size_t before = 0; before != nodes.size() && !nodes.empty();) {
      before = nodes.size();
      nodes = cutEscapingLists(nodes);
      if (!nodes.empty())
        nodes = trimEdges(nodes);
    }
    Region trimmed(region.block);
    for (Node *node : nodes) {
      if (const Reason whyNot = whyNotHosted(node, trimmed)) {
        log("region of " + std::to_string(region.nodes.size()) + " nodes from " +
            describeNode(region.first()) + " dropped: after trimming, " + describeNode(node) +
            " cannot join (" + *whyNot + ")");
        return;
      }
      trimmed.add(node);
    }
    if (!trimmed.hasConv)
      return;
    if (outputsAlias(trimmed)) {
      log("region of " + std::to_string(trimmed.nodes.size()) + " nodes from " +
          describeNode(trimmed.first()) +
          " dropped: its results alias its inputs or each other (copies would lose writes)");
      return;
    }
    out.push_back(std::move(trimmed));
  }

  AliasDb aliasDb_;
  std::vector<std::string> &decisions_;
};

} // namespace

void Region::add(Node *node) {
  nodes.push_back(node);
  members.insert(node);
  hasConv = hasConv || classifyOp(node) == OpClass::Conv;
  for (Value *v : operandsOf(node))
    if (!internal.count(v) && (isTensor(v) || isOptionalTensor(v))) {
      inputs.insert(v);
      if (!isParam(v) && v->node()->kind() != c10::prim::Param) {
        touched.insert(v);
        touchedInputs.insert(v);
      }
    }
  for (Value *v : node->outputs()) {
    internal.insert(v);
    // Lists hold their tensors, which are in here already; the alias analysis
    // lets a list alias every module attribute, so `num_batches_tracked.add_(1)`
    // between region nodes would end every region that builds a list.
    if (!isTensorList(v))
      touched.insert(v);
  }
}

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

std::vector<Region> findHostRegions(const std::shared_ptr<Graph> &graph,
                                    std::vector<std::string> &decisions) {
  std::vector<Region> regions;
  RegionFinder(graph, decisions).find(graph->block(), regions);
  return regions;
}

} // namespace rdna1::passes
