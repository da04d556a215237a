#include "LowerConvolutionBackward.h"

#include "OpSymbols.h"

#include "GraphWalk.h"

#include <rdna1/OpSchemas.h>

namespace rdna1::passes {

RewriteCounts LowerConvolutionBackward(const std::shared_ptr<torch::jit::Graph> &graph) {
  static const auto kConvolutionBackward =
      c10::Symbol::fromQualString("aten::convolution_backward");
  static const auto kHostBackward = symbols::kConvBackward;
  RewriteCounts counts;
  for (torch::jit::Node *node : allNodes(graph)) {
    // Same arguments and results as rdna1::conv_backward.
    if (node->kind() != kConvolutionBackward || node->inputs().size() != 11 ||
        node->outputs().size() != 3)
      continue;
    torch::jit::Node *host = graph->create(kHostBackward, node->inputs(), 3);
    host->insertBefore(node);
    host->setSourceRange(node->sourceRange());
    for (size_t i = 0; i < 3; ++i) {
      host->output(i)->copyMetadata(node->output(i));
      node->output(i)->replaceAllUsesWith(host->output(i));
    }
    node->destroy();
    ++counts[kConvolutionBackward.toQualString()];
  }
  return counts;
}

} // namespace rdna1::passes
