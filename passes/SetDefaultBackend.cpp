#include "SetDefaultBackend.h"

#include <rdna1/OpSchemas.h>

#include <torch/csrc/jit/ir/constants.h>

namespace rdna1::passes {

bool SetDefaultBackend(const std::shared_ptr<torch::jit::Graph> &graph,
                       const std::string &backend) {
  static const auto kSetDefault = c10::Symbol::fromQualString(ops::kSetDefaultBackend);
  std::vector<torch::jit::Node *> existing;
  for (torch::jit::Node *node : graph->nodes())
    if (node->kind() == kSetDefault)
      existing.push_back(node);
  if (existing.size() == (backend == "auto" ? 0U : 1U) &&
      (existing.empty() || torch::jit::toIValue(existing[0]->input())->toStringRef() == backend))
    return false;
  for (torch::jit::Node *node : existing)
    node->destroy();
  if (backend != "auto") {
    torch::jit::WithInsertPoint top(graph->block()->nodes().front());
    graph->insertNode(graph->create(kSetDefault, {graph->insertConstant(backend)}, 0));
  }
  return true;
}

} // namespace rdna1::passes
