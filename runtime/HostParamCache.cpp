#include "HostParamCache.h"

#include "BatchedTransfer.h"
#include "Counters.h"
#include "StandInDevice.h"

#include <ATen/ATen.h>

#include <utility>

namespace rdna1 {

HostParamCache::HostParamCache(Copier copier, NeedsCopy needsCopy)
    : copier_(std::move(copier)), needsCopy_(std::move(needsCopy)) {}

// Never destroyed: at exit the device runtime may be gone before static
// destructors run, and freeing pinned copies then aborts the process.
HostParamCache &HostParamCache::get() {
  static auto *cache =
      new HostParamCache(batchedToHost, [](const at::Tensor &t) { return needsMove(t, at::kCPU); });
  return *cache;
}

bool HostParamCache::isCurrent(const Entry &entry, const at::Tensor &param) {
  // Dtype and shape too: model.to(dtype) swaps each parameter's data, and a
  // caching device allocator may hand the new data the old address (same bytes
  // per element: float16 <-> bfloat16).
  return !param.is_inference() && !entry.owner.expired() && entry.version == param._version() &&
         entry.data == param.data_ptr() && entry.device == param.device() &&
         entry.host.scalar_type() == param.scalar_type() && entry.host.sizes() == param.sizes();
}

void HostParamCache::dropExpired() {
  for (auto it = entries_.begin(); it != entries_.end();)
    it = it->second.owner.expired() ? entries_.erase(it) : std::next(it);
}

std::vector<at::Tensor> HostParamCache::lookup(at::TensorList params) {
  std::vector<at::Tensor> out(params.begin(), params.end());
  std::vector<at::Tensor> missing;
  std::vector<size_t> missingAt;
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor &param = params[i];
    if (!param.defined() || !needsCopy_(param))
      continue;
    const auto found = entries_.find(param.unsafeGetTensorImpl());
    if (found != entries_.end() && isCurrent(found->second, param)) {
      out[i] = found->second.host;
      Counters::get().paramHits += 1;
    } else {
      missing.push_back(param);
      missingAt.push_back(i);
    }
  }
  if (missing.empty())
    return out;
  dropExpired();
  // Detached: the cache must not keep autograd graphs alive.
  std::vector<at::Tensor> detached;
  for (const at::Tensor &param : missing)
    detached.push_back(param.detach());
  const std::vector<at::Tensor> copies = copier_(detached);
  for (size_t k = 0; k < missing.size(); ++k) {
    const at::Tensor &param = missing[k];
    // Inference tensors keep no version counter, so their copies cannot be
    // validated: they are copied on every call instead.
    if (!param.is_inference())
      entries_.insert_or_assign(
          param.unsafeGetTensorImpl(),
          Entry{c10::weak_intrusive_ptr<c10::TensorImpl>(param.getIntrusivePtr()), param._version(),
                param.data_ptr(), param.device(), copies[k]});
    out[missingAt[k]] = copies[k];
    Counters::get().paramCopies += 1;
    Counters::get().paramBytes += param.numel() * static_cast<int64_t>(param.element_size());
  }
  return out;
}

void HostParamCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
}

size_t HostParamCache::size() {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

} // namespace rdna1
