#include "InsertHostRegions.h"

#include "GraphWalk.h"
#include "RegionEmitter.h"
#include "RegionFinder.h"
#include "RegionValues.h"

#include <rdna1/OpSchemas.h>

namespace rdna1::passes {

bool HasHostRegions(const std::shared_ptr<torch::jit::Graph> &graph) {
  static const auto kToHost = c10::Symbol::fromQualString(ops::kToHost);
  for (torch::jit::Node *node : allNodes(graph))
    if (node->kind() == kToHost)
      return true;
  return false;
}

RegionStats InsertHostRegions(const std::shared_ptr<torch::jit::Graph> &graph, RegionMode mode) {
  RegionStats stats;
  if (HasHostRegions(graph))
    return stats;
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

} // namespace rdna1::passes
