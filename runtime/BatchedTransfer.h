// Moves many tensors across the bus in one DMA per direction: on the way to
// the host they are packed into one device buffer, copied into pinned memory
// and synchronised once; on the way back they are packed into one pinned
// buffer and copied asynchronously. Results share the packed buffer's storage
// (without being views, so autograd and in-place ops treat them as fresh).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <vector>

namespace rdna1 {

// Host copies of `tensors`; 4-d and 5-d tensors arrive channels-last (the
// layout change happens on the device, where it is cheap), which is what the
// host convolutions are fastest in. Tensors already on the host and undefined
// tensors pass through unchanged (host tensors are copied too while the
// stand-in device is on, StandInDevice.h).
std::vector<at::Tensor> batchedToHost(at::TensorList tensors);

// Copies of host `tensors` on `devices[i]` (one entry per tensor); tensors
// already there (unless the stand-in device is on) and undefined tensors pass
// through unchanged.
std::vector<at::Tensor> batchedToDevices(at::TensorList tensors,
                                         const std::vector<c10::Device> &devices);

// Waits for the work queued on `device`'s current stream (a DMA included); the
// stand-in device copies synchronously, so nothing to wait for there.
void synchronizeCurrentStream(c10::Device device);

// `tensor` in the memory format a device op beside `like` would have given it:
// 4-d and 5-d tensors channels-last when `like` is, else contiguous; other
// tensors as they are. Host results arrive channels-last (the layout the host
// convolutions run fastest in), and code after a region may depend on strides
// (x.view(n, -1) fails on a channels-last x). A copy only where strides differ.
at::Tensor inLayoutOf(const at::Tensor &tensor, const at::Tensor &like);

// For tests only (CI has no GPU, where the functions above pass every tensor
// through): packs the defined `tensors` (all on one device) into one byte
// buffer on that device and unpacks them from it, with the same layout, packing
// and unpacking code as batchedToHost (channelsLast) or batchedToDevices (not),
// but without pinned memory, a transfer or counters. Undefined tensors pass
// through; the others come back as fresh tensors (not views) sharing the
// buffer's storage.
std::vector<at::Tensor> packRoundTripForTests(at::TensorList tensors, bool channelsLast);

} // namespace rdna1
