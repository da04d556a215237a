// Helpers shared by the passes.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace rdna1::passes {

// Every node of `block` and of the blocks nested in it (prim::If, prim::Loop),
// collected up front so callers may rewrite or destroy nodes while iterating.
inline void collectNodes(torch::jit::Block *block, std::vector<torch::jit::Node *> &out) {
  for (torch::jit::Node *node : block->nodes()) {
    out.push_back(node);
    for (torch::jit::Block *inner : node->blocks())
      collectNodes(inner, out);
  }
}

// The node of `block` that contains `node` (itself, or a node whose blocks
// do), or nullptr when `node` is not inside `block`.
inline torch::jit::Node *ancestorIn(torch::jit::Node *node, const torch::jit::Block *block) {
  while (node && node->owningBlock() != block)
    node = node->owningBlock()->owningNode();
  return node;
}

// Whether `node` is `ancestor` or lies in one of its blocks.
inline bool isWithin(const torch::jit::Node *node, const torch::jit::Node *ancestor) {
  for (; node; node = node->owningBlock()->owningNode())
    if (node == ancestor)
      return true;
  return false;
}

// The values `node` reads: its inputs, then the values that nodes in its
// blocks read from outside it (an If's branches read enclosing values
// directly), each once, in order of first use. prim::Uninitialized values are
// left out: a branch returns one only where it raised before.
inline std::vector<torch::jit::Value *> operandsOf(torch::jit::Node *node) {
  std::vector<torch::jit::Value *> operands;
  const auto add = [&operands](torch::jit::Value *v) {
    if (v->node()->kind() != c10::prim::Uninitialized &&
        std::find(operands.begin(), operands.end(), v) == operands.end())
      operands.push_back(v);
  };
  for (torch::jit::Value *v : node->inputs())
    add(v);
  std::vector<torch::jit::Node *> nested;
  for (torch::jit::Block *inner : node->blocks())
    collectNodes(inner, nested);
  for (torch::jit::Node *n : nested) {
    for (torch::jit::Value *v : n->inputs())
      if (!isWithin(v->node(), node))
        add(v);
    for (torch::jit::Block *inner : n->blocks())
      for (torch::jit::Value *v : inner->outputs())
        if (!isWithin(v->node(), node))
          add(v);
  }
  for (torch::jit::Block *inner : node->blocks())
    for (torch::jit::Value *v : inner->outputs())
      if (!isWithin(v->node(), node))
        add(v);
  return operands;
}

// The attribute names from the method's `self` to what `read` reads, when it
// is a chain of prim::GetAttr from `self` (inlined module calls read so).
inline std::optional<std::vector<std::string>>
attributePathFromSelf(const torch::jit::Node *read, const torch::jit::Value *self) {
  std::vector<std::string> names;
  for (const torch::jit::Node *n = read;; n = n->input(0)->node()) {
    if (n->kind() != c10::prim::GetAttr)
      return std::nullopt;
    names.insert(names.begin(), n->s(c10::attr::name));
    if (n->input(0) == self)
      return names;
  }
}

// Removes every output and node of `block`, users before what they use.
inline void clearBlock(torch::jit::Block *block) {
  for (size_t i = block->outputs().size(); i-- > 0;)
    block->eraseOutput(i);
  std::vector<torch::jit::Node *> nodes(block->nodes().begin(), block->nodes().end());
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it)
    (*it)->destroy();
}

inline std::vector<torch::jit::Node *> allNodes(const std::shared_ptr<torch::jit::Graph> &graph) {
  std::vector<torch::jit::Node *> nodes;
  collectNodes(graph->block(), nodes);
  return nodes;
}

} // namespace rdna1::passes
