#include "LowerBatchNorms.h"

#include "OpSymbols.h"

#include "GraphWalk.h"

#include <rdna1/OpSchemas.h>

#include <unordered_map>

namespace rdna1::passes {

RewriteCounts LowerBatchNorms(const std::shared_ptr<torch::jit::Graph> &graph) {
  static const std::unordered_map<c10::Symbol, c10::Symbol> kTargets{
      {c10::Symbol::fromQualString("aten::batch_norm"), symbols::kBatchNorm},
      {c10::Symbol::fromQualString("aten::instance_norm"), symbols::kInstanceNorm},
  };
  RewriteCounts counts;
  for (torch::jit::Node *node : allNodes(graph)) {
    const auto target = kTargets.find(node->kind());
    if (target == kTargets.end() || node->inputs().size() != 9 || node->outputs().size() != 1)
      continue;
    torch::jit::Node *lowered = graph->create(target->second, node->inputs(), 1);
    lowered->insertBefore(node);
    lowered->setSourceRange(node->sourceRange());
    lowered->output()->copyMetadata(node->output());
    node->output()->replaceAllUsesWith(lowered->output());
    node->destroy();
    ++counts[target->first.toQualString()];
  }
  return counts;
}

} // namespace rdna1::passes
