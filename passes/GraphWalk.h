// Helpers shared by the passes.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

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

inline std::vector<torch::jit::Node *> allNodes(const std::shared_ptr<torch::jit::Graph> &graph) {
  std::vector<torch::jit::Node *> nodes;
  collectNodes(graph->block(), nodes);
  return nodes;
}

} // namespace rdna1::passes
