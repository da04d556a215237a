#include "SetDefaultBackend.h"

#include "OpSymbols.h"

#include <torch/csrc/jit/ir/constants.h>

namespace rdna1::passes {

bool SetDefaultBackend(const std::shared_ptr<torch::jit::Graph> &graph, const std::string &backend,
                       bool addIfMissing) {
  std::vector<torch::jit::Node *> existing;
  for (torch::jit::Node *node : graph->nodes())
    if (node->kind() == symbols::kSetDefaultBackend)
      existing.push_back(node);
  if (existing.empty() && !addIfMissing)
    return false;
  if (existing.size() == 1 && torch::jit::toIValue(existing[0]->input())->toStringRef() == backend)
    return false;
  for (torch::jit::Node *node : existing)
    node->destroy();
  torch::jit::WithInsertPoint top(graph->block()->nodes().front());
  graph->insertNode(
      graph->create(symbols::kSetDefaultBackend, {graph->insertConstant(backend)}, 0));
  return true;
}

} // namespace rdna1::passes
