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
// (runs, hazards, edges), RegionCostModel.h (where the edges go under
// --regions=auto), RegionEmitter.h (the IR).
// --regions=max also hosts matrix products and trims nothing.
// --regions=conv hosts convolutions alone, each with batched, pinned,
// channels-last transfers.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <optional>
#include <string>
#include <vector>

namespace rdna1::passes {

enum class RegionMode { Auto, Max, ConvOnly };

// The mode's name as rdna1-rewrite --regions spells it ("auto", "max", "conv"),
// and the mode of a name (nullopt for another name): the one table of both.
const char *regionModeName(RegionMode mode);
std::optional<RegionMode> regionModeNamed(const std::string &name);

struct RegionStats {
  int regions = 0;
  int hostNodes = 0;
  // Every region dropped, cut or trimmed and every node that ended one, with why.
  std::vector<std::string> decisions;
  // The prim::If between the training and the eval copy, when the method was split.
  torch::jit::Node *evalSplit = nullptr;
};

bool HasHostRegions(const std::shared_ptr<torch::jit::Graph> &graph);

// Expects an inlined graph whose convolutions are already rdna1::conv nodes.
// A graph that already has regions is left as it is. With `evalPath`, a method
// that branches on `training` is split as SpecializeEvalPath.h says where that
// saves crossings in eval mode; the caller then outlines both copies
// (OutlineEvalPath.h), since TorchScript cannot load them inline in a large
// model.
RegionStats InsertHostRegions(const std::shared_ptr<torch::jit::Graph> &graph, RegionMode mode,
                              bool evalPath = false);

} // namespace rdna1::passes
