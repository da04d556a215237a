#include "StorageWrites.h"

#include <unordered_set>
#include <vector>

namespace rdna1::passes {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// Whether an alias annotation names any of `sets` (before the arrow, or in
// its contained types: Tensor(a)[]).
bool names(const c10::AliasInfo *alias, const std::unordered_set<c10::Symbol> &sets) {
  if (alias == nullptr)
    return false;
  for (const c10::Symbol &set : alias->beforeSets())
    if (sets.count(set))
      return true;
  for (const c10::AliasInfo &contained : alias->containedTypes())
    if (names(&contained, sets))
      return true;
  return false;
}

std::unordered_set<c10::Symbol> setsOf(const c10::AliasInfo *alias) {
  std::unordered_set<c10::Symbol> sets;
  if (alias == nullptr)
    return sets;
  sets.insert(alias->beforeSets().begin(), alias->beforeSets().end());
  for (const c10::AliasInfo &contained : alias->containedTypes()) {
    const auto inner = setsOf(&contained);
    sets.insert(inner.begin(), inner.end());
  }
  return sets;
}

// The walk (StorageWrites.h).
class SharedStorage {
public:
  explicit SharedStorage(Value *start) { pending_.push_back(start); }

  bool mayBeWritten() {
    while (!pending_.empty()) {
      Value *v = pending_.back();
      pending_.pop_back();
      if (!seen_.insert(v).second)
        continue;
      if (!followDefinition(v))
        return true;
      for (const torch::jit::Use &use : v->uses())
        if (!followUse(use))
          return true;
    }
    return false;
  }

private:
  // False where the storage may come from outside the graph.
  bool followDefinition(Value *v) {
    Node *def = v->node();
    if (def->kind() == c10::prim::Param || def->kind() == c10::prim::GetAttr)
      return false;
    if (containers_.count(v))
      return true; // a list holding the storage among others: those others are not it
    if (def->kind() == c10::prim::ListUnpack || def->kind() == c10::prim::TupleUnpack ||
        def->kind() == c10::prim::ListConstruct || def->kind() == c10::prim::TupleConstruct) {
      pending_.insert(pending_.end(), def->inputs().begin(), def->inputs().end());
      return true;
    }
    if (!def->blocks().empty())
      return false; // an If or Loop result: whatever its blocks return
    const c10::FunctionSchema *schema = def->maybeSchema();
    if (schema == nullptr)
      return false;
    for (size_t j = 0; j < def->outputs().size() && j < schema->returns().size(); ++j) {
      if (def->output(j) != v)
        continue;
      const auto sets = setsOf(schema->returns()[j].alias_info());
      for (size_t i = 0; i < def->inputs().size() && i < schema->arguments().size(); ++i)
        if (names(schema->arguments()[i].alias_info(), sets))
          pending_.push_back(def->input(i));
    }
    return true;
  }

  // False where the use may write the storage.
  bool followUse(const torch::jit::Use &use) {
    Node *user = use.user;
    const size_t i = use.offset;
    if (user->kind() == c10::prim::Return) {
      Node *owner = user->owningBlock()->owningNode();
      if (owner == nullptr)
        return true; // a result of the graph
      if (owner->kind() != c10::prim::If)
        return false;
      pending_.push_back(owner->output(i));
      return true;
    }
    if (user->kind() == c10::prim::ListConstruct || user->kind() == c10::prim::TupleConstruct) {
      containers_.insert(user->output());
      pending_.push_back(user->output());
      return true;
    }
    if (user->kind() == c10::prim::ListUnpack || user->kind() == c10::prim::TupleUnpack) {
      pending_.insert(pending_.end(), user->outputs().begin(), user->outputs().end());
      return true;
    }
    const c10::FunctionSchema *schema = user->maybeSchema();
    if (schema == nullptr || i >= schema->arguments().size())
      return false;
    const c10::AliasInfo *alias = schema->arguments()[i].alias_info();
    if (alias != nullptr && alias->isWrite())
      return false;
    const auto sets = setsOf(alias);
    for (size_t j = 0; j < user->outputs().size() && j < schema->returns().size(); ++j)
      if (names(schema->returns()[j].alias_info(), sets))
        pending_.push_back(user->output(j));
    return true;
  }

  std::vector<Value *> pending_;
  std::unordered_set<Value *> seen_;
  std::unordered_set<Value *> containers_;
};

} // namespace

bool StorageMayBeWritten(torch::jit::Value *value) {
  return SharedStorage(value).mayBeWritten();
}

} // namespace rdna1::passes
