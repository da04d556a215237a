#include "Transfer.h"

#include "BatchedTransfer.h"
#include "Counters.h"
#include "StandInDevice.h"

#include <ATen/ATen.h>

namespace rdna1 {
namespace {

// Under grad mode (a backward that builds a graph, for double backward) the
// crossing itself must be differentiable: an ATen copy that autograd records.
// Everything else crosses batched, through pinned memory (BatchedTransfer.h).
bool crossesDifferentiably(const at::Tensor &t) {
  return t.defined() && at::GradMode::is_enabled() && t.requires_grad();
}

at::Tensor copyDifferentiably(const at::Tensor &tensor, c10::Device device) {
  if (!needsMove(tensor, device))
    return tensor;
  const int64_t bytes = tensor.numel() * static_cast<int64_t>(tensor.element_size());
  if (device.is_cpu())
    Counters::get().countToHost(bytes);
  else
    Counters::get().countToDevice(bytes);
  return tensor.device() == device ? tensor.clone() : tensor.to(device, /*non_blocking=*/true);
}

// `tensors` crossed: those that may go batched in one call of `batched`
// (given them and their positions), the others one by one by `single`.
template <typename Batched, typename Single>
std::vector<at::Tensor> crossEach(at::TensorList tensors, Batched batched, Single single) {
  std::vector<at::Tensor> out(tensors.begin(), tensors.end());
  std::vector<at::Tensor> batch;
  std::vector<size_t> positions;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (crossesDifferentiably(tensors[i])) {
      out[i] = single(i);
    } else if (tensors[i].defined()) {
      batch.push_back(tensors[i]);
      positions.push_back(i);
    }
  }
  const std::vector<at::Tensor> moved = batched(batch, positions);
  for (size_t k = 0; k < positions.size(); ++k)
    out[positions[k]] = moved[k];
  return out;
}

} // namespace

std::vector<at::Tensor> toHost(at::TensorList tensors) {
  return crossEach(
      tensors,
      [](const std::vector<at::Tensor> &batch, const std::vector<size_t> &) {
        return batchedToHost(batch);
      },
      [&](size_t i) { return copyDifferentiably(tensors[i], at::kCPU); });
}

at::Tensor toHost(const at::Tensor &tensor) {
  return toHost(at::TensorList(tensor))[0];
}

c10::optional<at::Tensor> toHost(const c10::optional<at::Tensor> &tensor) {
  if (!tensor || !tensor->defined())
    return c10::nullopt;
  return toHost(*tensor);
}

std::vector<at::Tensor> toDevices(at::TensorList tensors, const std::vector<c10::Device> &devices) {
  TORCH_CHECK(tensors.size() == devices.size(), "rdna1: ", tensors.size(), " tensors but ",
              devices.size(), " devices");
  return crossEach(
      tensors,
      [&](const std::vector<at::Tensor> &batch, const std::vector<size_t> &positions) {
        std::vector<c10::Device> targets;
        targets.reserve(positions.size());
        for (size_t i : positions)
          targets.push_back(devices[i]);
        return batchedToDevices(batch, targets);
      },
      [&](size_t i) { return copyDifferentiably(tensors[i], devices[i]); });
}

at::Tensor toDevice(const at::Tensor &tensor, c10::Device device) {
  return toDevices(at::TensorList(tensor), {device})[0];
}

} // namespace rdna1
