#include "Transfer.h"

#include "Counters.h"
#include "StandInDevice.h"

#include <ATen/ATen.h>

namespace rdna1 {

at::Tensor toHost(const at::Tensor &tensor) {
  if (!tensor.defined() || !needsMove(tensor, at::kCPU))
    return tensor;
  Counters::get().toHostCopies += 1;
  Counters::get().toHostBytes += tensor.numel() * static_cast<int64_t>(tensor.element_size());
  return tensor.device().is_cpu() ? tensor.clone() : tensor.to(at::kCPU);
}

c10::optional<at::Tensor> toHost(const c10::optional<at::Tensor> &tensor) {
  if (!tensor || !tensor->defined())
    return c10::nullopt;
  return toHost(*tensor);
}

at::Tensor toDevice(const at::Tensor &tensor, c10::Device device) {
  if (!tensor.defined() || !needsMove(tensor, device))
    return tensor;
  Counters::get().toDeviceCopies += 1;
  Counters::get().toDeviceBytes += tensor.numel() * static_cast<int64_t>(tensor.element_size());
  return tensor.device() == device ? tensor.clone() : tensor.to(device, /*non_blocking=*/true);
}

} // namespace rdna1
