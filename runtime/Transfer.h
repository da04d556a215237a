// Moves tensors between the device a model runs on and the host, where the
// convolutions run. Every bus crossing of the runtime goes through here, so
// batching and pinned staging live in one place.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/util/Optional.h>

namespace rdna1 {

// The tensor on the host; the same tensor when it is already there (a copy
// while the stand-in device is on, StandInDevice.h).
at::Tensor toHost(const at::Tensor &tensor);
c10::optional<at::Tensor> toHost(const c10::optional<at::Tensor> &tensor);

// The tensor on `device`; the same tensor when it is already there (a copy
// while the stand-in device is on).
// Undefined tensors pass through (absent gradients).
at::Tensor toDevice(const at::Tensor &tensor, c10::Device device);

} // namespace rdna1
