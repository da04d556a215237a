#include "FindDnnLibraryCalls.h"

#include "GraphWalk.h"
#include "LowerConvolutions.h"

#include <array>

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
  static const std::array<const char *, 7> kKinds{"aten::lstm",
                                                  "aten::gru",
                                                  "aten::rnn_tanh",
                                                  "aten::rnn_relu",
                                                  "aten::ctc_loss",
                                                  "aten::grid_sampler",
                                                  "aten::affine_grid_generator"};
  const std::string kind = node->kind().toQualString();
  for (const char *known : kKinds)
    if (kind == known)
      return true;
  return false;
}

} // namespace

std::vector<std::string> FindRemainingDnnUsers(const std::shared_ptr<torch::jit::Graph> &graph) {
  std::vector<std::string> found;
  for (torch::jit::Node *node : allNodes(graph))
    if (stillUsesDnnLibrary(node))
      found.emplace_back(node->kind().toQualString());
  return found;
}

std::vector<std::string> FindDnnLibraryCalls(const std::shared_ptr<torch::jit::Graph> &graph) {
  std::vector<std::string> found;
  for (torch::jit::Node *node : allNodes(graph))
    if (reachesDnnLibrary(node))
      found.emplace_back(node->kind().toQualString());
  return found;
}

} // namespace rdna1::passes
