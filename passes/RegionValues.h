// What the region finder and emitter ask of a value: its type, whether it is a
// module parameter, and whether it exists (or can be made to) at a node.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <string>

namespace rdna1::passes {

inline bool isTensor(const torch::jit::Value *v) {
  return v->type()->kind() == c10::TypeKind::TensorType;
}

inline bool isOptionalTensor(const torch::jit::Value *v) {
  const auto optional = v->type()->cast<c10::OptionalType>();
  return optional && optional->getElementType()->kind() == c10::TypeKind::TensorType;
}

inline bool isTensorList(const torch::jit::Value *v) {
  const auto list = v->type()->cast<c10::ListType>();
  return list && list->getElementType()->kind() == c10::TypeKind::TensorType;
}

inline bool isConstantFalse(const torch::jit::Value *v) {
  const auto constant = torch::jit::toIValue(v);
  return constant && constant->isBool() && !constant->toBool();
}

// Module attributes and constants: their host copies are cached by the runtime.
inline bool isParam(const torch::jit::Value *v) {
  return v->node()->kind() == c10::prim::GetAttr || v->node()->kind() == c10::prim::Constant;
}

// Whether `v` exists at `first` without moving anything. A value a region node
// reads is visible in the region's block: defined there or in an enclosing one.
inline bool definedBefore(const torch::jit::Value *v, const torch::jit::Node *first) {
  const torch::jit::Node *def = v->node();
  if (def->kind() == c10::prim::Param || def->owningBlock() != first->owningBlock())
    return true;
  return def->isBefore(first);
}

// "%name = kind" for decision messages.
inline std::string describeNode(const torch::jit::Node *node) {
  const std::string kind = node->kind().toQualString();
  if (!node->outputs().empty())
    return "%" + node->output(0)->debugName() + " = " + kind;
  return node->inputs().empty() ? kind : kind + "(%" + node->input(0)->debugName() + ")";
}

} // namespace rdna1::passes
