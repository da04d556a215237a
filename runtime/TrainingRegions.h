// Which training copy a rewritten forward takes when it has two
// (rdna1-rewrite --train-regions=bus, the default with --regions=auto): `auto`
// regions cross the bus a few times per step and keep the norms and
// activations on the host; the `conv` copy moves every convolution's operands
// (each convolution on its own, no regions) but leaves that work, forward and
// backward, to the device. Which is faster is a matter of the bus, so the
// runtime measures it.
#pragma once

#include <c10/core/Device.h>

#include <optional>

namespace rdna1 {

// The bus speed, in GB/s each way, from which `conv` regions win for training.
// From the H200 box's training steps (bench/RESULTS.md, fourth session): `conv`
// stops winning below 12.3 (resnet18 b8), 17.4 (mobilenet_v2 b8) and 25.8 GB/s
// (the UNet b2), measured with 16 host threads; fewer host threads (an RDNA1
// desktop's 6-8) make the host work `conv` saves dearer, so the break-even lower.
// 18 GB/s sends PCIe 4.0 x16 (about 25 GB/s pinned) to `conv` and PCIe 3.0
// x16 or 4.0 x8 (about 12) to `auto`. Those figures are for the fourth
// session's conv copy, a region per convolution; without regions it trains
// 3-11% faster (seventh session), so the true break-even is lower still.
inline constexpr double kConvRegionsMinBusGBps = 18.0;

// Pinned copies to and from `device`, GB/s, the slower direction; measured
// the first time a device index is asked for and remembered. 0 for the CPU,
// and where the measurement fails.
double busBandwidth(c10::Device device);

// Whether training-mode forwards on `device` should take their `conv` copy:
// RDNA1_TRAIN_REGIONS=auto|conv if set; else the host backend serves `device`
// and busBandwidth(device) >= kConvRegionsMinBusGBps. The CPU (and no device:
// a forward without tensor arguments) takes `auto`.
bool trainWithConvRegions(std::optional<c10::Device> device);

} // namespace rdna1
