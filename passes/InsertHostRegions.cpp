#include "InsertHostRegions.h"

#include "OpSymbols.h"

#include "GraphWalk.h"
#include "RegionEmitter.h"
#include "RegionFinder.h"
#include "RegionValues.h"

#include <algorithm>

namespace rdna1::passes {

int CountToHost(torch::jit::Block *block) {
  std::vector<torch::jit::Node *> nodes;
  collectNodes(block, nodes);
  return static_cast<int>(std::count_if(nodes.begin(), nodes.end(), [](torch::jit::Node *node) {
    return node->kind() == symbols::kToHost;
  }));
}

bool HasHostRegions(const std::shared_ptr<torch::jit::Graph> &graph) {
  return CountToHost(graph->block()) > 0;
}

RegionStats InsertHostRegions(const std::shared_ptr<torch::jit::Graph> &graph) {
  RegionStats stats;
  if (HasHostRegions(graph))
    return stats;
  for (const Region &region : findHostRegions(graph, stats.decisions)) {
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
