// The cost model behind a host region's edges (--regions=auto): where an op at
// the entry or exit of a region should run, from what it costs on the host,
// on the device, and to move its tensors across the bus.
//
// Scripted graphs carry no shapes, so costs are per byte of the op's main
// input (B): an op class has a size ratio (output bytes / B) and a host cost
// per byte; device compute is taken as free (hundreds of GB/s against tens).
// Moving an op across a region edge never changes the number of crossings,
// only their bytes, so per-copy latency does not enter edge decisions; it is
// why interior ops always stay on the host (leaving would add two crossings).
//
// Constants (one place; the README's "Host regions" states the rules they give):
//  - bus: 12 GB/s per direction, pinned and batched. PCIe 3.0 x16 or 4.0 x8,
//    the common RDNA1 desktop (RX 5500 XT is x8); 4.0 x16 doubles it.
//  - host: 20 GB/s for one streaming elementwise pass (oneDNN/ATen on 6-8
//    cores); norms read twice; views cost nothing; concatenation and padding
//    copy once; pooling reads its input once.
//  - pooling shrinks by 4 (2x2 stride 2, the common case; adaptive pooling to
//    1x1 shrinks far more); upsampling grows by 4 (2x nearest or bilinear).
#pragma once

#include "HostOpPolicy.h"

#include <string>

namespace rdna1::passes::cost {

inline constexpr double kBusBytesPerSecond = 12e9;
inline constexpr double kHostBytesPerSecond = 20e9;

struct EdgeChoice {
  bool hostIt;        // whether the op joins the region at this edge
  double hostSeconds; // per byte of B, with the op in the region
  double deviceSeconds;
};

// An op of class `cls` reading `activationInputs` tensors from outside the
// region (entry edge): in the region, its inputs cross and the host computes
// it; on the device, it runs there and its output crosses.
EdgeChoice atEntry(OpClass cls, int activationInputs);

// An op of class `cls` at the exit edge: in the region, the host computes it
// and its output crosses; on the device, its region-made inputs cross.
EdgeChoice atExit(OpClass cls, int regionInputs);

std::string explain(const EdgeChoice &choice);

} // namespace rdna1::passes::cost
