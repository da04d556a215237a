// Groups host convolutions and the cheap ops around them into host regions, so
// tensors cross the bus once per region instead of once per convolution.
//
// A region is a run of nodes of one block (never across prim::If/prim::Loop;
// their blocks get regions of their own). At its entry one rdna1::to_host moves
// every activation that flows in and one rdna1::host_params fetches the cached
// host copies of the parameters it reads; at its exit one rdna1::to_device
// moves back every result used later. Nodes that only read metadata (sizes,
// None checks, module attributes) may sit between region nodes and stay put.
// Tensor lists made inside a region (construct, append, cat, chunk, split,
// stack) stay inside it; a region is cut before a list that is used after it.
//
// Hazards kept out of regions: nodes that write a value from outside the
// region or an alias of one (AliasDb), dropout in training (randomness),
// attribute writes and calls that were not inlined. Batch/instance norms whose
// running statistics are module buffers may join a region: in training mode
// the updated statistics are copied back to the device after the region.
//
// The pieces: HostOpPolicy.h (which ops, of what cost class), RegionFinder.h
// (runs, hazards, edges), RegionCostModel.h (where the edges go), RegionEmitter.h
// (the IR). Splitting a method into a training and an eval copy is not this
// pass's business: RewriteModule does it before, where it saves crossings.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <string>
#include <vector>

namespace rdna1::passes {

struct RegionStats {
  int regions = 0;
  int hostNodes = 0;
  // Every region dropped, cut or trimmed and every node that ended one, with why.
  std::vector<std::string> decisions;
};

bool HasHostRegions(const std::shared_ptr<torch::jit::Graph> &graph);
// The rdna1::to_host calls in `block` and its nested blocks: the region entries.
int CountToHost(torch::jit::Block *block);

// Expects an inlined graph whose convolutions are already rdna1::conv nodes.
// A graph that already has regions is left as it is.
RegionStats InsertHostRegions(const std::shared_ptr<torch::jit::Graph> &graph);

} // namespace rdna1::passes
