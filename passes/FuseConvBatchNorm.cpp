#include "FuseConvBatchNorm.h"

#include "GraphWalk.h"
#include "OpSymbols.h"

#include <torch/csrc/jit/ir/constants.h>

#include <map>
#include <utility>

namespace rdna1::passes {
namespace {

constexpr size_t kConvInputs = 9;      // rdna1::conv's default overload
constexpr size_t kBatchNormInputs = 9; // rdna1::batch_norm
constexpr size_t kTransposedInput = 6;

constexpr size_t kTrainingInput = 5; // rdna1::batch_norm's

// F.batch_norm's check that a batch has more than one value per channel in
// training: a prim::If on the norm's training flag, between the two calls,
// that reads only the convolution output's sizes. It can run after the fused
// call, on its output (of the same sizes): the runtime makes the same check
// before it changes any statistic.
bool isTrainingSizeCheck(torch::jit::Node *use, torch::jit::Node *conv, torch::jit::Node *norm) {
  static const c10::Symbol kSize = c10::Symbol::fromQualString("aten::size");
  torch::jit::Node *check = ancestorIn(use, conv->owningBlock());
  return use->kind() == kSize && check && check != use && check->kind() == c10::prim::If &&
         check->outputs().empty() && check->input(0) == norm->input(kTrainingInput) &&
         conv->isBefore(check) && check->isBefore(norm);
}

// nn.BatchNorm's count of training batches: num_batches_tracked.add_(1).
bool countsBatches(const torch::jit::Node *node) {
  static const c10::Symbol kAddInPlace = c10::Symbol::fromQualString("aten::add_");
  const torch::jit::Node *target = node->inputs().empty() ? nullptr : node->input(0)->node();
  return node->kind() == kAddInPlace && target->kind() == c10::prim::GetAttr &&
         target->s(c10::attr::name) == "num_batches_tracked";
}

// Whether `node` (and what its blocks hold) writes nothing a convolution
// could read: no in-place op but the batch count, no attribute set. Raising
// is allowed: the convolution computes nothing anyone sees before the raise.
// (Alias analysis cannot tell a module's buffers apart, so it would refuse
// every pair over the batch count.)
bool writesNoOperand(const torch::jit::Node *node) {
  if (node->kind() == c10::prim::SetAttr)
    return false;
  if (const c10::FunctionSchema *schema = node->maybeSchema())
    if (schema->is_mutable() && !countsBatches(node))
      return false;
  for (const torch::jit::Block *block : node->blocks())
    for (const torch::jit::Node *inner : block->nodes())
      if (!writesNoOperand(inner))
        return false;
  return true;
}

// Why the pair (conv, norm) stays two calls, or "" where it can be one.
std::string whyNotFused(torch::jit::Node *conv, torch::jit::Node *norm) {
  if (conv->inputs().size() != kConvInputs)
    return "the convolution takes string padding";
  const auto transposed = torch::jit::constant_as<bool>(conv->input(kTransposedInput));
  if (!transposed || *transposed)
    return "transposed convolution (its weight holds the output channels second)";
  if (conv->owningBlock() != norm->owningBlock())
    return "the norm is in another block";
  std::vector<torch::jit::Node *> checks;
  for (const torch::jit::Use &use : conv->output()->uses()) {
    if (use.user == norm)
      continue;
    if (!isTrainingSizeCheck(use.user, conv, norm))
      return "the convolution's output has other uses";
    checks.push_back(ancestorIn(use.user, conv->owningBlock()));
  }
  // The fused call runs where the norm does: nothing between may write the
  // convolution's operands.
  for (torch::jit::Node *between = conv->next(); between != norm; between = between->next())
    if (!writesNoOperand(between))
      return "an op between them may write the convolution's operands";
  for (torch::jit::Node *check : checks)
    if (check->isBefore(norm))
      check->moveAfter(norm);
  conv->moveBefore(norm);
  return "";
}

// nn.BatchNorm's forward checks its input's rank (aten::dim) before the
// norm: a convolution's output has its input's rank, so the check reads the
// input instead and the norm is left the output's only use.
void checkRankOfConvolutionInputs(const std::shared_ptr<torch::jit::Graph> &graph) {
  static const c10::Symbol kDim = c10::Symbol::fromQualString("aten::dim");
  for (torch::jit::Node *node : allNodes(graph))
    if (node->kind() == kDim && node->input(0)->node()->kind() == symbols::kConv)
      node->replaceInput(0, node->input(0)->node()->input(0));
}

void fuse(torch::jit::Graph &graph, torch::jit::Node *conv, torch::jit::Node *norm) {
  std::vector<torch::jit::Value *> inputs(conv->inputs().begin(), conv->inputs().end());
  inputs.insert(inputs.end(), norm->inputs().begin() + 1, norm->inputs().end());
  torch::jit::Node *fused = graph.create(symbols::kConvBatchNorm, inputs, 1);
  fused->insertBefore(norm);
  fused->setSourceRange(norm->sourceRange());
  fused->output()->copyMetadata(norm->output());
  norm->output()->replaceAllUsesWith(fused->output());
  conv->output()->replaceAllUsesWith(fused->output()); // the size checks after it
  norm->destroy();
  conv->destroy();
}

} // namespace

ConvNormFusion FuseConvBatchNorm(const std::shared_ptr<torch::jit::Graph> &graph) {
  ConvNormFusion result;
  std::map<std::string, int> declined;
  std::vector<std::pair<torch::jit::Node *, torch::jit::Node *>> pairs;
  checkRankOfConvolutionInputs(graph);
  for (torch::jit::Node *norm : allNodes(graph)) {
    if (norm->kind() != symbols::kBatchNorm || norm->inputs().size() != kBatchNormInputs)
      continue;
    torch::jit::Node *conv = norm->input(0)->node();
    if (conv->kind() != symbols::kConv)
      continue;
    const std::string why = whyNotFused(conv, norm);
    if (why.empty())
      pairs.emplace_back(conv, norm);
    else
      declined[why] += 1;
  }
  for (const auto &[conv, norm] : pairs)
    fuse(*graph, conv, norm);
  result.fused = static_cast<int>(pairs.size());
  for (const auto &[why, count] : declined)
    result.declined.push_back(why + " x" + std::to_string(count));
  return result;
}

} // namespace rdna1::passes
