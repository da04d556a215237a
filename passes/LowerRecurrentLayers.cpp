#include "LowerRecurrentLayers.h"

#include "OpSymbols.h"

#include "GraphWalk.h"

#include <string>
#include <unordered_map>

namespace rdna1::passes {
namespace {

c10::Symbol twinOf(const torch::jit::Node *node) {
  static const std::unordered_map<c10::Symbol, c10::Symbol> kTwins{
      {c10::Symbol::fromQualString("aten::lstm"), symbols::kLstm},
      {c10::Symbol::fromQualString("aten::gru"), symbols::kGru},
      {c10::Symbol::fromQualString("aten::rnn_tanh"), symbols::kRnnTanh},
      {c10::Symbol::fromQualString("aten::rnn_relu"), symbols::kRnnRelu},
  };
  const auto twin = kTwins.find(node->kind());
  return twin == kTwins.end() ? c10::Symbol() : twin->second;
}

// The overloads whose rdna1:: twin takes the same arguments. The twin's
// overload is resolved from the argument types (Tensor[] or Tensor second),
// so one symbol serves both.
bool hasTwinOverload(const torch::jit::Node *node) {
  const c10::FunctionSchema *schema = node->maybeSchema();
  return schema && (schema->overload_name() == "input" || schema->overload_name() == "data");
}

void replaceWith(const std::shared_ptr<torch::jit::Graph> &graph, torch::jit::Node *node,
                 c10::Symbol twin) {
  torch::jit::Node *lowered = graph->create(twin, node->inputs(), node->outputs().size());
  lowered->insertBefore(node);
  lowered->setSourceRange(node->sourceRange());
  for (size_t i = 0; i < node->outputs().size(); ++i) {
    lowered->output(i)->copyMetadata(node->output(i));
    node->output(i)->replaceAllUsesWith(lowered->output(i));
  }
  node->destroy();
}

} // namespace

RewriteCounts LowerRecurrentLayers(const std::shared_ptr<torch::jit::Graph> &graph) {
  RewriteCounts counts;
  for (torch::jit::Node *node : allNodes(graph)) {
    const c10::Symbol twin = twinOf(node);
    if (twin == c10::Symbol() || !hasTwinOverload(node))
      continue;
    const std::string kind = node->kind().toQualString();
    replaceWith(graph, node, twin);
    ++counts[kind];
  }
  return counts;
}

} // namespace rdna1::passes
