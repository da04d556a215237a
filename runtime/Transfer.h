// Moves tensors between the device a model runs on and the host, where the
// convolutions run. Every bus crossing of the runtime goes through here, so
// batching and pinned staging live in one place.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/util/Optional.h>

#include <vector>

namespace rdna1 {

// The tensors on the host, in one pinned DMA (batchedToHost); each the same
// tensor when it is already there (a copy while the stand-in device is on,
// StandInDevice.h). Under grad mode a tensor that requires grad crosses by a
// copy autograd records instead, so a backward can be differentiated again.
std::vector<at::Tensor> toHost(at::TensorList tensors);
at::Tensor toHost(const at::Tensor &tensor);
c10::optional<at::Tensor> toHost(const c10::optional<at::Tensor> &tensor);

// Each host tensor on `devices[i]`, in one pinned DMA per device
// (batchedToDevices), with toHost's exceptions. Undefined tensors pass through
// (absent gradients).
std::vector<at::Tensor> toDevices(at::TensorList tensors, const std::vector<c10::Device> &devices);
at::Tensor toDevice(const at::Tensor &tensor, c10::Device device);

} // namespace rdna1
