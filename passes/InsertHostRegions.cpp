#include "InsertHostRegions.h"

#include "GraphWalk.h"
#include "RegionEmitter.h"
#include "RegionFinder.h"
#include "RegionValues.h"
#include "SpecializeEvalPath.h"

#include <rdna1/OpSchemas.h>

#include <algorithm>
#include <utility>

namespace rdna1::passes {
namespace {

int countToHost(torch::jit::Block *block) {
  static const auto kToHost = c10::Symbol::fromQualString(ops::kToHost);
  std::vector<torch::jit::Node *> nodes;
  collectNodes(block, nodes);
  return static_cast<int>(std::count_if(
      nodes.begin(), nodes.end(), [](torch::jit::Node *node) { return node->kind() == kToHost; }));
}

RegionStats insertRegions(const std::shared_ptr<torch::jit::Graph> &graph, RegionMode mode) {
  RegionStats stats;
  for (const Region &region : findHostRegions(graph, mode, stats.decisions)) {
    std::string whyNot;
    if (!emitHostRegion(*graph, region, whyNot)) {
      stats.decisions.push_back("region from " + describeNode(region.first()) +
                                " not emitted: " + whyNot);
      continue;
    }
    ++stats.regions;
    stats.hostNodes += static_cast<int>(region.nodes.size());
  }
  return stats;
}

// Whether the graph split by SpecializeEvalPath crosses the bus less often in
// eval mode than the graph as it is; says why either way when it could split.
bool evalPathSavesCrossings(const std::shared_ptr<torch::jit::Graph> &graph, RegionMode mode,
                            std::string &decision) {
  const std::shared_ptr<torch::jit::Graph> split = graph->copy();
  const EvalPath path = SpecializeEvalPath(split);
  if (!path.evalBlock) {
    return false; // nothing to split: nothing worth logging
  }
  const std::shared_ptr<torch::jit::Graph> plain = graph->copy();
  insertRegions(plain, mode);
  insertRegions(split, mode);
  const int before = countToHost(plain->block()), after = countToHost(path.evalBlock);
  const std::string counts =
      std::to_string(after) + " to_host in eval mode instead of " + std::to_string(before);
  if (after >= before) {
    decision = "no eval path: it would have " + counts;
    return false;
  }
  decision = "eval path: a copy of the method for when none of its " + std::to_string(path.flags) +
             " training flags is set, " + counts + "; training mode keeps " +
             std::to_string(before);
  return true;
}

} // namespace

namespace {
constexpr std::pair<RegionMode, const char *> kModeNames[] = {
    {RegionMode::Auto, "auto"}, {RegionMode::Max, "max"}, {RegionMode::ConvOnly, "conv"}};
} // namespace

const char *regionModeName(RegionMode mode) {
  for (const auto &[each, name] : kModeNames)
    if (each == mode)
      return name;
  return "?";
}

std::optional<RegionMode> regionModeNamed(const std::string &name) {
  for (const auto &[mode, each] : kModeNames)
    if (name == each)
      return mode;
  return std::nullopt;
}

bool HasHostRegions(const std::shared_ptr<torch::jit::Graph> &graph) {
  return countToHost(graph->block()) > 0;
}

RegionStats InsertHostRegions(const std::shared_ptr<torch::jit::Graph> &graph, RegionMode mode,
                              bool evalPath) {
  if (HasHostRegions(graph))
    return {};
  std::string decision;
  const bool split = evalPath && evalPathSavesCrossings(graph, mode, decision);
  torch::jit::Node *evalSplit = split ? SpecializeEvalPath(graph).evalBlock->owningNode() : nullptr;
  RegionStats stats = insertRegions(graph, mode);
  stats.evalSplit = evalSplit;
  if (!decision.empty())
    stats.decisions.insert(stats.decisions.begin(), decision);
  return stats;
}

} // namespace rdna1::passes
