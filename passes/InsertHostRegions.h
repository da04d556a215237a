// Groups host convolutions and the cheap ops around them into host regions, so
// tensors cross the bus once per region instead of once per convolution.
//
// A region is a run of nodes of one block (never across prim::If/prim::Loop;
// their blocks get regions of their own). At its entry one rdna1::to_host moves
// every activation that flows in and one rdna1::host_params fetches the cached
// host copies of the parameters it reads; at its exit one rdna1::to_device
// moves back every result used later. Nodes that only read metadata (sizes,
// None checks, module attributes) may sit between region nodes and stay put.
//
// Hazards kept out of regions: nodes that write a value from outside the
// region or an alias of one (AliasDb), dropout in training (randomness),
// attribute writes and calls that were not inlined. Batch/instance norms whose
// running statistics are module buffers may join a region: in training mode
// the updated statistics are copied back to the device after the region.
//
// Cost model (--regions=auto). Moving a tensor costs bytes / bus bandwidth plus
// a per-copy latency; an elementwise, norm or pooling op costs about
// bytes / host memory bandwidth on the host and almost nothing on the device.
// Hence:
//  - light ops between two host ops stay on the host: sending their tensor to
//    the device and back costs two copies, more than computing them here;
//  - light ops at a region's edge that keep their tensor's size go to the
//    device: the same bytes cross either way, and the device computes them
//    for free;
//  - ops that shrink their tensor (pooling, means) stay at the exit edge: the
//    smaller result crosses instead;
//  - matrix products and attention (linear, matmul, softmax, ...) run on the
//    device: their FLOPs per byte far exceed what the host can match for the
//    cost of a crossing.
// --regions=max also hosts matrix products and trims nothing.
// --regions=conv hosts convolutions alone, each with batched, pinned,
// channels-last transfers: for training, where norms and activations (forward
// and backward) cost more on the host than their tensors cost on the bus.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

namespace rdna1::passes {

enum class RegionMode { Auto, Max, ConvOnly };

struct RegionStats {
  int regions = 0;
  int hostNodes = 0;
};

bool HasHostRegions(const std::shared_ptr<torch::jit::Graph> &graph);

// Expects an inlined graph whose convolutions are already rdna1::conv nodes.
// A graph that already has regions is left as it is.
RegionStats InsertHostRegions(const std::shared_ptr<torch::jit::Graph> &graph, RegionMode mode);

} // namespace rdna1::passes
