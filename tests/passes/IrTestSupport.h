// Helpers shared by the pass tests.
#pragma once

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/ir/irparser.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace rdna1::testing {

// parseIR names only graph inputs; give every other value its name from the IR
// too, as a scripted graph would have, so tests can see names carried over.
inline std::shared_ptr<torch::jit::Graph>
parseNamed(const std::string &ir, std::unordered_map<std::string, torch::jit::Value *> &values) {
  auto graph = std::make_shared<torch::jit::Graph>();
  torch::jit::parseIR(ir, graph.get(), values);
  for (const auto &[name, value] : values)
    if (!value->hasDebugName() && name.find_first_not_of("0123456789") != std::string::npos)
      value->setDebugName(name);
  return graph;
}

inline std::shared_ptr<torch::jit::Graph> parseNamed(const std::string &ir) {
  std::unordered_map<std::string, torch::jit::Value *> values;
  return parseNamed(ir, values);
}

inline void collectKind(torch::jit::Block *block, const std::string &kind,
                        std::vector<torch::jit::Node *> &out) {
  for (torch::jit::Node *node : block->nodes()) {
    if (node->kind().toQualString() == kind)
      out.push_back(node);
    for (torch::jit::Block *inner : node->blocks())
      collectKind(inner, kind, out);
  }
}

// Every node of `kind`, nested blocks included, in program order.
inline std::vector<torch::jit::Node *> nodesOfKind(const std::shared_ptr<torch::jit::Graph> &graph,
                                                   const std::string &kind) {
  std::vector<torch::jit::Node *> out;
  collectKind(graph->block(), kind, out);
  return out;
}

} // namespace rdna1::testing
