#include "SpecializeModuleFlags.h"

#include "FoldConstantBranches.h"
#include "GraphWalk.h"

#include <torch/csrc/jit/ir/constants.h>

#include <algorithm>
#include <optional>
#include <unordered_set>

namespace rdna1::passes {
namespace {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

// Attribute names any method of the module or its submodules writes.
std::unordered_set<std::string> attributesSetByModel(const torch::jit::Module &module) {
  std::unordered_set<std::string> names;
  for (const torch::jit::Module &submodule : module.modules())
    for (const torch::jit::Method &method : submodule.get_methods())
      for (Node *node : allNodes(method.graph()))
        if (node->kind() == c10::prim::SetAttr)
          names.insert(node->s(c10::attr::name));
  return names;
}

bool isFlagType(const c10::TypePtr &type) {
  const auto kind = type->kind();
  return kind == c10::TypeKind::BoolType || kind == c10::TypeKind::IntType ||
         kind == c10::TypeKind::FloatType || kind == c10::TypeKind::StringType;
}

// The value of the attribute that `read` (a chain of prim::GetAttr from the
// method's `self`) names, with its dotted path.
std::optional<std::pair<c10::IValue, std::string>>
attributeValue(const Node *read, const Value *self, const torch::jit::Module &module) {
  const auto names = attributePathFromSelf(read, self);
  if (!names)
    return std::nullopt;
  c10::IValue object = module._ivalue();
  std::string path;
  for (const std::string &name : *names) {
    if (!object.isObject() || !object.toObjectRef().type()->hasAttribute(name))
      return std::nullopt;
    object = object.toObjectRef().getAttr(name);
    path += (path.empty() ? "" : ".") + name;
  }
  return std::make_pair(object, path);
}

// Dict attributes that no method writes: every read of them anywhere is a
// lookup (IntermediateLayerGetter's `name in self.return_layers`).
std::unordered_set<std::string> readOnlyDictAttributes(const torch::jit::Module &module,
                                                       const std::unordered_set<std::string> &set) {
  static const std::unordered_set<c10::Symbol> lookups{
      c10::aten::__contains__, c10::aten::__getitem__, c10::aten::len,
      c10::Symbol::fromQualString("aten::keys"), c10::Symbol::fromQualString("aten::get")};
  std::unordered_set<std::string> dicts, written;
  for (const torch::jit::Module &submodule : module.modules())
    for (const torch::jit::Method &method : submodule.get_methods())
      for (Node *node : allNodes(method.graph())) {
        if (node->kind() != c10::prim::GetAttr ||
            node->output()->type()->kind() != c10::TypeKind::DictType)
          continue;
        const std::string &name = node->s(c10::attr::name);
        dicts.insert(name);
        for (const torch::jit::Use &use : node->output()->uses())
          if (!lookups.count(use.user->kind()) || use.offset != 0)
            written.insert(name);
      }
  std::unordered_set<std::string> readOnly;
  for (const std::string &name : dicts)
    if (!written.count(name) && !set.count(name))
      readOnly.insert(name);
  return readOnly;
}

bool isImmutableValue(const c10::IValue &value) {
  return value.isBool() || value.isInt() || value.isDouble() || value.isString();
}

// `key in dict` and `dict[key]` on a read-only dict attribute with a constant
// key, as the constant they evaluate to (a missing key's lookup stays: it raises).
std::optional<c10::IValue> constantLookup(const Node *node, const Value *self,
                                          const torch::jit::Module &module,
                                          const std::unordered_set<std::string> &readOnly) {
  if ((node->kind() != c10::aten::__contains__ && node->kind() != c10::aten::__getitem__) ||
      node->inputs().size() != 2 || node->input(0)->node()->kind() != c10::prim::GetAttr ||
      !readOnly.count(node->input(0)->node()->s(c10::attr::name)))
    return std::nullopt;
  const auto key = torch::jit::toIValue(node->input(1));
  const auto dict = attributeValue(node->input(0)->node(), self, module);
  if (!key || !dict || !dict->first.isGenericDict() || !isImmutableValue(*key))
    return std::nullopt;
  const c10::Dict<c10::IValue, c10::IValue> entries = dict->first.toGenericDict();
  const auto found = entries.find(*key);
  if (node->kind() == c10::aten::__contains__)
    return c10::IValue(found != entries.end());
  if (found == entries.end() || !isImmutableValue(found->value()))
    return std::nullopt;
  return found->value();
}

std::string show(const c10::IValue &value) {
  if (value.isBool())
    return value.toBool() ? "True" : "False";
  if (value.isInt())
    return std::to_string(value.toInt());
  if (value.isDouble())
    return std::to_string(value.toDouble());
  return "'" + value.toStringRef() + "'";
}

} // namespace

std::vector<std::string> SpecializeModuleFlags(const torch::jit::Module &module,
                                               std::shared_ptr<Graph> &graph) {
  if (graph->inputs().empty())
    return {};
  const Value *self = graph->inputs()[0];
  const auto dynamic = attributesSetByModel(module);
  const auto readOnlyDicts = readOnlyDictAttributes(module, dynamic);
  std::vector<std::string> frozen;
  for (Node *node : allNodes(graph)) {
    if (const auto lookup = constantLookup(node, self, module, readOnlyDicts)) {
      torch::jit::WithInsertPoint here(node);
      node->output()->replaceAllUsesWith(graph->insertConstant(*lookup));
      const auto path = attributeValue(node->input(0)->node(), self, module)->second;
      const std::string key = show(*torch::jit::toIValue(node->input(1)));
      frozen.push_back(
          path + "=" +
          (node->kind() == c10::aten::__contains__ ? key + " in it: " : "[" + key + "]: ") +
          show(*lookup));
      continue;
    }
    if (node->kind() != c10::prim::GetAttr || !isFlagType(node->output()->type()))
      continue;
    const std::string &name = node->s(c10::attr::name);
    if (name == "training" || dynamic.count(name))
      continue;
    const auto value = attributeValue(node, self, module);
    if (!value)
      continue;
    torch::jit::WithInsertPoint here(node);
    node->output()->replaceAllUsesWith(graph->insertConstant(value->first));
    frozen.push_back(value->second + "=" + show(value->first));
  }
  if (frozen.empty())
    return frozen;
  foldConstantBranches(graph);
  std::sort(frozen.begin(), frozen.end());
  frozen.erase(std::unique(frozen.begin(), frozen.end()), frozen.end());
  return frozen;
}

} // namespace rdna1::passes
