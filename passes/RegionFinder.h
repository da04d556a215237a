// Finds host regions: runs of nodes of one block that may move to the host
// together (InsertHostRegions.h says what may join and why), trimmed at their
// edges by the cost model's rules (RegionCostModel.h). Every region it drops
// or trims, and every node that ends a region, is logged with the reason.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <string>
#include <unordered_set>
#include <vector>

namespace rdna1::passes {

struct Region {
  torch::jit::Block *block = nullptr;
  std::vector<torch::jit::Node *> nodes;
  std::unordered_set<const torch::jit::Node *> members;
  std::unordered_set<const torch::jit::Value *> internal; // values the region's nodes define
  torch::jit::ValueSet inputs; // tensors from outside that region nodes read
  // Values read or made by the region, for the alias check of neutral nodes.
  // Module attributes and graph inputs are left out: the alias analysis lets
  // all of them alias each other, so a neutral `num_batches_tracked.add_(1)`
  // would end every region; direct writes to them are checked by schema.
  torch::jit::ValueSet touched;
  torch::jit::ValueSet touchedInputs; // the inputs among them
  // Values written in place by neutral nodes inside the run: a later region node
  // may not read them through a host copy taken at the region's entry.
  std::vector<torch::jit::Value *> neutralWrites;
  bool hasConv = false;

  explicit Region(torch::jit::Block *b) : block(b) {}
  bool empty() const { return nodes.empty(); }
  torch::jit::Node *first() const { return nodes.front(); }
  void add(torch::jit::Node *node);
};

// Uses of `v` that come after the region, where the device copy must be read.
std::vector<torch::jit::Use> usesAfter(torch::jit::Value *v, const Region &region);

// The regions of `graph` (nested blocks included), in graph order.
std::vector<Region> findHostRegions(const std::shared_ptr<torch::jit::Graph> &graph,
                                    std::vector<std::string> &decisions);

} // namespace rdna1::passes
