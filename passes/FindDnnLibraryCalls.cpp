#include "FindDnnLibraryCalls.h"

#include "GraphWalk.h"
#include "LowerConvolutions.h"

#include <array>
#include <unordered_set>

namespace rdna1::passes {
namespace {

bool reachesDnnLibrary(const torch::jit::Node *node) {
  static const auto kConvolutionBackward =
      c10::Symbol::fromQualString("aten::convolution_backward");
  if (isConvolutionSpelling(node->kind()) || node->kind() == kConvolutionBackward)
    return true;
  static const std::array<const char *, 7> kPrefixes{"aten::cudnn_convolution",
                                                     "aten::cudnn_batch_norm",
                                                     "aten::miopen_",
                                                     "aten::_convolution_double_backward",
                                                     "aten::batch_norm",
                                                     "aten::instance_norm",
                                                     "aten::_batch_norm_impl_index"};
  const std::string kind = node->kind().toQualString();
  for (const char *prefix : kPrefixes)
    if (kind.rfind(prefix, 0) == 0)
      return true;
  return false;
}

bool stillUsesDnnLibrary(const torch::jit::Node *node) {
  static const std::unordered_set<std::string> kKinds(RemainingDnnUserKinds().begin(),
                                                      RemainingDnnUserKinds().end());
  return kKinds.count(node->kind().toQualString()) != 0;
}

// The kinds of the graph's nodes (nested blocks too) that `matches`.
std::vector<std::string> kindsWhere(const std::shared_ptr<torch::jit::Graph> &graph,
                                    bool (*matches)(const torch::jit::Node *)) {
  std::vector<std::string> found;
  for (torch::jit::Node *node : allNodes(graph))
    if (matches(node))
      found.emplace_back(node->kind().toQualString());
  return found;
}

} // namespace

const std::vector<std::string> &RemainingDnnUserKinds() {
  static const std::vector<std::string> kKinds{"aten::lstm",
                                               "aten::gru",
                                               "aten::rnn_tanh",
                                               "aten::rnn_relu",
                                               "aten::ctc_loss",
                                               "aten::grid_sampler",
                                               "aten::affine_grid_generator"};
  return kKinds;
}

std::vector<std::string> FindRemainingDnnUsers(const std::shared_ptr<torch::jit::Graph> &graph) {
  return kindsWhere(graph, stillUsesDnnLibrary);
}

std::vector<std::string> FindDnnLibraryCalls(const std::shared_ptr<torch::jit::Graph> &graph) {
  return kindsWhere(graph, reachesDnnLibrary);
}

} // namespace rdna1::passes
