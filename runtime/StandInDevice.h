// The stand-in device, for tests on machines without a GPU. With it on, host
// tensors are treated as if they lived on a device: every region boundary,
// host-parameter lookup, per-op transfer and copy-back really copies into
// separate storage (counted like a bus crossing), so a lost copy, a dropped
// write-back or a stale cache shows on the CPU as it would on a GPU.
//
// On when the environment has RDNA1_STAND_IN_DEVICE=1 at the first use, or
// after setStandInDevice(true) (rdna1.set_stand_in_device(True) in Python).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace rdna1 {

bool standInDevice();
void setStandInDevice(bool on);

// Whether `tensor` must be copied to be on `target`: it lives elsewhere, or
// both are the host and the stand-in device is on.
bool needsMove(const at::Tensor &tensor, c10::Device target);

} // namespace rdna1
