// The HIP devices of this machine, asked without ever failing: no HIP runtime,
// no driver and no GPU are all ordinary answers. (describeHipDevices() is
// declared in the public rdna1/DeviceProbe.h.)
#pragma once

#include <rdna1/DeviceProbe.h>

#include <string>

namespace rdna1 {

// The number of HIP devices; 0 without HIP, a driver or a GPU.
int hipDeviceCount();

// What identifies HIP device `index` for the probe's cache: name, gcnArchName,
// driver and runtime versions; "" without HIP.
std::string hipDeviceKey(int index);

} // namespace rdna1
