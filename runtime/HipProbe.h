// Describes the HIP devices of this machine without ever failing: no HIP
// runtime, no driver and no GPU are all ordinary answers.
#pragma once

#include <string>

namespace rdna1 {

// One line, e.g. "HIP: 1 device: gfx1010 (RDNA1, AMD Radeon RX 5700 XT)" or
// "HIP: no device (hipErrorNoDevice)" or "HIP: not built in".
std::string describeHipDevices();

// The number of HIP devices; 0 without HIP, a driver or a GPU.
int hipDeviceCount();

// What identifies HIP device `index` for the probe's cache: name, gcnArchName,
// driver and runtime versions; "" without HIP.
std::string hipDeviceKey(int index);

} // namespace rdna1
