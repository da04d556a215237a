#include "DisableCudnnInNorms.h"

#include "GraphWalk.h"

#include <torch/csrc/jit/ir/constants.h>

#include <unordered_map>

namespace rdna1::passes {
namespace {

// Position of the cudnn_enabled argument in each norm's schema.
const std::unordered_map<c10::Symbol, size_t> &cudnnFlagPositions() {
  static const std::unordered_map<c10::Symbol, size_t> positions{
      {c10::Symbol::fromQualString("aten::batch_norm"), 8},
      {c10::Symbol::fromQualString("aten::instance_norm"), 8},
      {c10::Symbol::fromQualString("aten::layer_norm"), 5},
      {c10::Symbol::fromQualString("aten::group_norm"), 5},
  };
  return positions;
}

bool isConstantFalse(torch::jit::Value *value) {
  const auto constant = torch::jit::toIValue(value);
  return constant && constant->isBool() && !constant->toBool();
}

} // namespace

RewriteCounts DisableCudnnInNorms(const std::shared_ptr<torch::jit::Graph> &graph) {
  RewriteCounts counts;
  for (torch::jit::Node *node : allNodes(graph)) {
    const auto found = cudnnFlagPositions().find(node->kind());
    if (found == cudnnFlagPositions().end() || node->inputs().size() <= found->second)
      continue;
    torch::jit::Value *flag = node->input(found->second);
    if (flag->type()->kind() != c10::TypeKind::BoolType || isConstantFalse(flag))
      continue;
    torch::jit::WithInsertPoint insertBefore(node);
    node->replaceInput(found->second, graph->insertConstant(false));
    ++counts[found->first.toQualString()];
  }
  return counts;
}

} // namespace rdna1::passes
