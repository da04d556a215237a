#include "SpecializeModuleFlags.h"

#include "GraphWalk.h"

#include <torch/csrc/jit/passes/constant_propagation.h>

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
  std::vector<std::string> names;
  for (const Node *n = read;; n = n->input(0)->node()) {
    if (n->kind() != c10::prim::GetAttr)
      return std::nullopt;
    names.push_back(n->s(c10::attr::name));
    if (n->input(0) == self)
      break;
  }
  std::reverse(names.begin(), names.end());
  c10::IValue object = module._ivalue();
  std::string path;
  for (const std::string &name : names) {
    if (!object.isObject() || !object.toObjectRef().type()->hasAttribute(name))
      return std::nullopt;
    object = object.toObjectRef().getAttr(name);
    path += (path.empty() ? "" : ".") + name;
  }
  return std::make_pair(object, path);
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
  std::vector<std::string> frozen;
  for (Node *node : allNodes(graph)) {
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
  // Folding a branch can make the condition of an enclosing one constant.
  for (int round = 0; round < 4 && torch::jit::ConstantPropagationImmutableTypes(graph); ++round) {
  }
  std::sort(frozen.begin(), frozen.end());
  frozen.erase(std::unique(frozen.begin(), frozen.end()), frozen.end());
  return frozen;
}

} // namespace rdna1::passes
