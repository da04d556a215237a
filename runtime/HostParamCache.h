// Host copies of parameters and constants, kept across calls so weights cross
// the bus once, not once per forward. An entry is reused only while it is
// provably the same data: same tensor (held weakly, so its address cannot be
// reused), same version counter (in-place updates such as optimizer steps bump
// it), same data pointer and device (model.to(), set_()). Thread-safe.
#pragma once

#include <ATen/core/Tensor.h>

#include <mutex>
#include <unordered_map>
#include <vector>

namespace rdna1 {

class HostParamCache {
public:
  static HostParamCache &get();

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

  std::mutex mutex_;
  std::unordered_map<const c10::TensorImpl *, Entry> entries_;
};

} // namespace rdna1
