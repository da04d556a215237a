#include "SplitForEvalMode.h"

#include "InsertHostRegions.h"
#include "SpecializeEvalPath.h"

namespace rdna1::passes {

torch::jit::Node *SplitForEvalMode(const std::shared_ptr<torch::jit::Graph> &graph,
                                   std::string &decision) {
  const std::shared_ptr<torch::jit::Graph> split = graph->copy();
  const EvalPath path = SpecializeEvalPath(split);
  if (!path.evalBlock)
    return nullptr;
  const std::shared_ptr<torch::jit::Graph> plain = graph->copy();
  InsertHostRegions(plain);
  InsertHostRegions(split);
  const int before = CountToHost(plain->block()), after = CountToHost(path.evalBlock);
  const std::string counts =
      std::to_string(after) + " to_host in eval mode instead of " + std::to_string(before);
  if (after >= before) {
    decision = "no eval path: it would have " + counts;
    return nullptr;
  }
  decision = "eval path: a copy of the method for when none of its " + std::to_string(path.flags) +
             " training flags is set, " + counts + "; training mode keeps " +
             std::to_string(before);
  return SpecializeEvalPath(graph).evalBlock->owningNode();
}

} // namespace rdna1::passes
