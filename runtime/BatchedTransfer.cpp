#include "BatchedTransfer.h"

#include "Counters.h"
#include "ProfileScope.h"
#include "StandInDevice.h"

#include <ATen/ATen.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <functional>

namespace rdna1 {
namespace {

constexpr int64_t kAlignment = 64; // keeps every packed tensor aligned for any dtype

int64_t alignUp(int64_t bytes) {
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

int64_t byteSize(const at::Tensor &t) {
  return t.numel() * static_cast<int64_t>(t.element_size());
}

// The bytes of a dense tensor (any stride order) as a flat uint8 tensor.
at::Tensor rawBytes(const at::Tensor &dense) {
  return at::empty({0}, dense.options().dtype(at::kByte))
      .set_(dense.storage(), dense.storage_offset() * static_cast<int64_t>(dense.element_size()),
            {byteSize(dense)}, {1});
}

// A tensor with `like`'s dtype, sizes and strides over `buffer`'s bytes at `offset`.
at::Tensor unpack(const at::Tensor &buffer, int64_t offset, const at::Tensor &like) {
  return at::empty({0}, buffer.options().dtype(like.scalar_type()))
      .set_(buffer.storage(), offset / static_cast<int64_t>(like.element_size()), like.sizes(),
            like.strides());
}

// Lazy conjugate and negative bits are not in the bytes: resolve them first.
at::Tensor resolved(const at::Tensor &t) {
  return t.resolve_conj().resolve_neg();
}

// An empty tensor counts as "contiguous" whatever its strides (a slice x[:0]
// keeps x's): give it canonical ones, or kernels that view it later fail.
at::Tensor canonicalIfEmpty(const at::Tensor &t, at::MemoryFormat format) {
  return t.numel() == 0 ? at::empty(t.sizes(), t.options().memory_format(format)) : t;
}

// Channels-last with its canonical strides. A tensor whose size-1 dimensions
// make it contiguous both ways (1x1 and depthwise weights, N x C x 1 x 1
// activations) keeps its NCHW strides through .contiguous(ChannelsLast) and
// reads as NCHW to oneDNN, which then runs a convolution of an NCHW input in
// NCHW, and the layers after it too (shufflenet_v2 after each channel
// shuffle). Its bytes are already in channels-last order, so only the strides
// change.
at::Tensor channelsLast(const at::Tensor &t, at::MemoryFormat format) {
  const at::Tensor dense = canonicalIfEmpty(t.contiguous(format), format);
  const std::vector<int64_t> strides = format == at::MemoryFormat::ChannelsLast
                                           ? c10::get_channels_last_strides_2d(dense.sizes())
                                           : c10::get_channels_last_strides_3d(dense.sizes());
  return dense.strides() == c10::IntArrayRef(strides)
             ? dense
             : dense.as_strided(dense.sizes(), strides, dense.storage_offset());
}

at::Tensor denseForHost(const at::Tensor &input) {
  const at::Tensor t = resolved(input);
  if (t.dim() == 4)
    return channelsLast(t, at::MemoryFormat::ChannelsLast);
  if (t.dim() == 5)
    return channelsLast(t, at::MemoryFormat::ChannelsLast3d);
  return canonicalIfEmpty(t.is_non_overlapping_and_dense() ? t : t.contiguous(),
                          at::MemoryFormat::Contiguous);
}

at::Tensor denseForDevice(const at::Tensor &input) {
  const at::Tensor t = resolved(input);
  return canonicalIfEmpty(t.is_non_overlapping_and_dense() ? t : t.contiguous(),
                          at::MemoryFormat::Contiguous);
}

// Staging memory for a DMA with `device`: pinned, except for the stand-in
// device (the host itself), where pinning would need a GPU runtime.
at::Tensor stagingBuffer(int64_t bytes, c10::Device device) {
  RDNA1_PROFILE_SCOPE("rdna1::staging_buffer");
  return at::empty({bytes}, at::TensorOptions().dtype(at::kByte).pinned_memory(!device.is_cpu()));
}

// Where each tensor of a group goes in the packed buffer.
struct PackLayout {
  std::vector<at::Tensor> dense;
  std::vector<int64_t> offsets;
  int64_t total = 0;

  PackLayout(at::TensorList tensors, const std::vector<size_t> &indices,
             at::Tensor (*makeDense)(const at::Tensor &)) {
    for (size_t i : indices) {
      dense.push_back(makeDense(tensors[i]));
      offsets.push_back(total);
      total += alignUp(byteSize(dense.back()));
    }
  }

  // Copies every tensor's bytes to its place in `buffer` (bytes, at least `total` long).
  void packInto(const at::Tensor &buffer, bool nonBlocking = false) const {
    for (size_t k = 0; k < dense.size(); ++k)
      buffer.narrow(0, offsets[k], byteSize(dense[k])).copy_(rawBytes(dense[k]), nonBlocking);
  }

  // Sets out[indices[k]] to the k-th tensor over `buffer`'s storage.
  void unpackFrom(const at::Tensor &buffer, const std::vector<size_t> &indices,
                  std::vector<at::Tensor> &out) const {
    for (size_t k = 0; k < dense.size(); ++k)
      out[indices[k]] = unpack(buffer, offsets[k], dense[k]);
  }
};

// Indices of the tensors that must move, grouped by the device they move between.
std::vector<std::pair<c10::Device, std::vector<size_t>>>
groupMoves(at::TensorList tensors, const std::function<c10::Device(size_t)> &target,
           const std::function<c10::Device(size_t)> &groupKey) {
  std::vector<std::pair<c10::Device, std::vector<size_t>>> groups;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].defined() || !needsMove(tensors[i], target(i)))
      continue;
    const c10::Device key = groupKey(i);
    auto group =
        std::find_if(groups.begin(), groups.end(), [&](const auto &g) { return g.first == key; });
    if (group == groups.end())
      groups.push_back({key, {i}});
    else
      group->second.push_back(i);
  }
  return groups;
}

// Moves the tensors at `indices` (all on `source`) to the host with one DMA.
void packToHost(at::TensorList tensors, const std::vector<size_t> &indices, c10::Device source,
                std::vector<at::Tensor> &out) {
  RDNA1_PROFILE_SCOPE("rdna1::pack_to_host");
  const PackLayout layout(tensors, indices, denseForHost);
  const auto &[dense, offsets, total] = layout;
  at::Tensor pinned = stagingBuffer(total, source);
  if (dense.size() == 1) {
    layout.packInto(pinned, /*nonBlocking=*/true); // straight into pinned memory
  } else {
    at::Tensor packed = at::empty({total}, dense[0].options().dtype(at::kByte));
    layout.packInto(packed);
    pinned.copy_(packed, /*non_blocking=*/true);
  }
  synchronizeCurrentStream(source);
  layout.unpackFrom(pinned, indices, out);
  Counters::get().countToHost(total);
}

// Moves the host tensors at `indices` to `target` with one asynchronous DMA.
void packToDevice(at::TensorList tensors, const std::vector<size_t> &indices, c10::Device target,
                  std::vector<at::Tensor> &out) {
  RDNA1_PROFILE_SCOPE("rdna1::pack_to_device");
  const PackLayout layout(tensors, indices, denseForDevice);
  at::Tensor pinned = stagingBuffer(layout.total, target);
  layout.packInto(pinned);
  const at::Tensor packed = pinned.to(target, /*non_blocking=*/true);
  layout.unpackFrom(packed, indices, out);
  Counters::get().countToDevice(layout.total);
}

} // namespace

void synchronizeCurrentStream(c10::Device device) {
  RDNA1_PROFILE_SCOPE("rdna1::wait_for_bus");
  if (!device.is_cpu()) // the stand-in device copies synchronously
    c10::impl::getDeviceGuardImpl(device.type())->getStream(device).synchronize();
}

std::vector<at::Tensor> batchedToHost(at::TensorList tensors) {
  std::vector<at::Tensor> out(tensors.begin(), tensors.end());
  const auto host = [](size_t) { return c10::Device(at::kCPU); };
  const auto source = [&](size_t i) { return tensors[i].device(); };
  for (const auto &[device, indices] : groupMoves(tensors, host, source))
    packToHost(tensors, indices, device, out);
  return out;
}

std::vector<at::Tensor> batchedToDevices(at::TensorList tensors,
                                         const std::vector<c10::Device> &devices) {
  TORCH_CHECK(tensors.size() == devices.size(), "rdna1: ", tensors.size(), " tensors but ",
              devices.size(), " devices");
  std::vector<at::Tensor> out(tensors.begin(), tensors.end());
  const auto target = [&](size_t i) { return devices[i]; };
  for (const auto &[device, indices] : groupMoves(tensors, target, target)) {
    for (size_t i : indices)
      TORCH_CHECK(tensors[i].device().is_cpu(), "rdna1: expected a host tensor, got one on ",
                  tensors[i].device());
    packToDevice(tensors, indices, device, out);
  }
  return out;
}

at::Tensor inLayoutOf(const at::Tensor &tensor, const at::Tensor &like) {
  if (!tensor.defined() || (tensor.dim() != 4 && tensor.dim() != 5))
    return tensor;
  const auto likeFormat =
      like.defined() ? like.suggest_memory_format() : at::MemoryFormat::Contiguous;
  if (likeFormat != at::MemoryFormat::ChannelsLast &&
      likeFormat != at::MemoryFormat::ChannelsLast3d)
    return tensor.contiguous(); // itself where it already is
  return tensor.contiguous(tensor.dim() == 4 ? at::MemoryFormat::ChannelsLast
                                             : at::MemoryFormat::ChannelsLast3d);
}

std::vector<at::Tensor> packRoundTripForTests(at::TensorList tensors, bool channelsLast) {
  std::vector<at::Tensor> out(tensors.begin(), tensors.end());
  std::vector<size_t> indices;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].defined())
      continue;
    TORCH_CHECK(tensors[i].device() == tensors[indices.empty() ? i : indices[0]].device(),
                "rdna1: packRoundTripForTests needs tensors on one device");
    indices.push_back(i);
  }
  if (indices.empty())
    return out;
  const PackLayout layout(tensors, indices, channelsLast ? denseForHost : denseForDevice);
  const at::Tensor buffer = at::empty({layout.total}, layout.dense[0].options().dtype(at::kByte));
  layout.packInto(buffer);
  layout.unpackFrom(buffer, indices, out);
  return out;
}

} // namespace rdna1
