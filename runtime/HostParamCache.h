// Host copies of parameters and constants, kept across calls so weights cross
// the bus once, not once per forward. An entry is reused only while it is
// provably the same data: same tensor (held weakly, so its address cannot be
// reused), same version counter (in-place updates such as optimizer steps bump
// it), same data pointer, device, dtype and shape (model.to(), set_()).
// Thread-safe.
//
// Not seen: writes through `param.data` (it has a version counter of its own),
// as old-style code does (`p.data.copy_(...)`). Call clear() after such writes.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace rdna1 {

class HostParamCache {
public:
  // Host copies of tensors, in one batched transfer (batchedToHost).
  using Copier = std::function<std::vector<at::Tensor>(at::TensorList)>;
  // Whether a defined tensor needs a host copy (is not on the host already).
  using NeedsCopy = std::function<bool(const at::Tensor &)>;

  // The process-wide cache: batchedToHost over every tensor not on the host.
  static HostParamCache &get();

  // A cache of its own; for tests, which on a machine without a GPU cache host
  // tensors with a copier of their own.
  HostParamCache(Copier copier, NeedsCopy needsCopy);
  HostParamCache(const HostParamCache &) = delete;
  HostParamCache &operator=(const HostParamCache &) = delete;

  // Host versions of `params`: cached ones as they are, the rest copied in one
  // batched transfer. Host tensors and undefined tensors pass through.
  std::vector<at::Tensor> lookup(at::TensorList params);
  void clear();
  size_t size();

private:
  struct Entry {
    c10::weak_intrusive_ptr<c10::TensorImpl> owner;
    int64_t version;
    const void *data;
    c10::Device device;
    at::Tensor host;
  };
  static bool isCurrent(const Entry &entry, const at::Tensor &param);
  void dropExpired();

  const Copier copier_;
  const NeedsCopy needsCopy_;
  std::mutex mutex_;
  std::unordered_map<const c10::TensorImpl *, Entry> entries_;
};

} // namespace rdna1
