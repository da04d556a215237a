#include "EvalBatchNorm.h"

#include "Counters.h"

#include <ATen/TracerMode.h>
#include <c10/util/intrusive_ptr.h>

#include <array>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace rdna1 {
namespace {

using WeakImpl = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;

// One operand as it was when scale and shift were computed. The weak reference
// keeps the TensorImpl's address from being reused while the entry exists, so
// the same address, alive, is the same tensor.
struct OperandState {
  WeakImpl impl; // an undefined tensor's is the undefined singleton, which never expires
  const c10::TensorImpl *address = nullptr;
  const void *data = nullptr;
  int64_t version = 0;

  explicit OperandState(const at::Tensor &t)
      : impl(t.getIntrusivePtr()), address(t.defined() ? t.unsafeGetTensorImpl() : nullptr),
        data(t.defined() ? t.data_ptr() : nullptr), version(t.defined() ? t._version() : 0) {}

  bool expired() const { return address != nullptr && impl.expired(); }

  bool describes(const at::Tensor &t) const {
    if (!t.defined())
      return address == nullptr;
    return address == t.unsafeGetTensorImpl() && !impl.expired() && data == t.data_ptr() &&
           version == t._version();
  }
};

struct Folded {
  std::array<OperandState, 4> operands; // weight, bias, running mean, running variance
  double eps;
  at::Tensor scale, shift; // [C]
};

std::array<at::Tensor, 4> operandsOf(const c10::optional<at::Tensor> &weight,
                                     const c10::optional<at::Tensor> &bias, const at::Tensor &mean,
                                     const at::Tensor &var) {
  return {weight.value_or(at::Tensor()), bias.value_or(at::Tensor()), mean, var};
}

std::pair<at::Tensor, at::Tensor> scaleAndShift(const std::array<at::Tensor, 4> &operands,
                                                double eps) {
  const at::Tensor &weight = operands[0], &bias = operands[1], &mean = operands[2],
                   &var = operands[3];
  at::NoGradGuard noGrad;
  Counters::get().evalNormScales += 1;
  at::Tensor scale = (var + eps).rsqrt();
  if (weight.defined())
    scale = scale * weight;
  at::Tensor shift = bias.defined() ? bias - mean * scale : -(mean * scale);
  return {scale, shift};
}

class FoldedNorms {
public:
  static FoldedNorms &get() {
    static FoldedNorms *norms = new FoldedNorms(); // never destroyed: used from static teardown
    return *norms;
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.clear();
  }

  void forget(const at::Tensor &runningVar) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.erase(runningVar.unsafeGetTensorImpl());
  }

  std::pair<at::Tensor, at::Tensor> lookup(const std::array<at::Tensor, 4> &operands, double eps) {
    std::lock_guard<std::mutex> lock(mutex_);
    const c10::TensorImpl *key = operands[3].unsafeGetTensorImpl();
    const auto found = entries_.find(key);
    if (found != entries_.end() && found->second.eps == eps && matches(found->second, operands))
      return {found->second.scale, found->second.shift};
    dropExpired();
    auto [scale, shift] = scaleAndShift(operands, eps);
    entries_.erase(key);
    entries_.emplace(key, Folded{{OperandState(operands[0]), OperandState(operands[1]),
                                  OperandState(operands[2]), OperandState(operands[3])},
                                 eps,
                                 scale,
                                 shift});
    return {scale, shift};
  }

private:
  static bool matches(const Folded &entry, const std::array<at::Tensor, 4> &operands) {
    for (size_t i = 0; i < operands.size(); ++i)
      if (!entry.operands[i].describes(operands[i]))
        return false;
    return true;
  }

  void dropExpired() {
    for (auto it = entries_.begin(); it != entries_.end();) {
      bool expired = false;
      for (const OperandState &state : it->second.operands)
        expired = expired || state.expired();
      it = expired ? entries_.erase(it) : std::next(it);
    }
  }

  std::mutex mutex_;
  std::unordered_map<const c10::TensorImpl *, Folded> entries_;
};

// A fake, functional, meta or functorch-wrapped tensor: torch.export is
// tracing (kept values would become constants of the traced program), or vmap
// or grad transforms are on (whose rules for out= ops are not ours to rely on).
bool traced(const at::Tensor &t) {
  static const c10::DispatchKeySet kWrapped{c10::DispatchKey::Python,
                                            c10::DispatchKey::Functionalize,
                                            c10::DispatchKey::PythonTLSSnapshot,
                                            c10::DispatchKey::FuncTorchBatched,
                                            c10::DispatchKey::FuncTorchGradWrapper,
                                            c10::DispatchKey::Batched};
  return t.defined() && (t.is_meta() || t.key_set().has_any(kWrapped) || !t.has_storage() ||
                         t.layout() != at::kStrided);
}

// Operands whose values the cache may key on: with a version counter
// (inference tensors have none; activations under inference mode are such,
// the parameters they meet are not).
bool cacheable(const at::Tensor &t) {
  return !t.defined() || !t.is_inference();
}

bool recordsGradient(const std::array<at::Tensor, 4> &operands, const at::Tensor &input) {
  if (!at::GradMode::is_enabled())
    return false;
  bool any = input.requires_grad();
  for (const at::Tensor &t : operands)
    any = any || (t.defined() && t.requires_grad());
  return any;
}

} // namespace

std::optional<at::Tensor> evalBatchNorm(const at::Tensor &input,
                                        const c10::optional<at::Tensor> &weight,
                                        const c10::optional<at::Tensor> &bias,
                                        const at::Tensor &runningMean, const at::Tensor &runningVar,
                                        double eps) {
  const auto type = input.scalar_type();
  // float16 and bfloat16 stay with ATen's kernel, which computes them in float32 with vectorised
  // mixed-type loads; a multiply-add would have to cast (older CPU kernels cannot).
  if ((type != at::kFloat && type != at::kDouble) || input.numel() == 0 || input.dim() < 2 ||
      traced(input))
    return std::nullopt;
  const std::array<at::Tensor, 4> operands = operandsOf(weight, bias, runningMean, runningVar);
  for (const at::Tensor &t : operands)
    if (t.defined() && (t.scalar_type() != type || t.device() != input.device() || t.dim() != 1 ||
                        t.numel() != input.size(1) || traced(t)))
      return std::nullopt;
  if (recordsGradient(operands, input) || at::tracer::impl::is_dispatch_enabled())
    return std::nullopt;
  bool keep = true;
  for (const at::Tensor &t : operands)
    keep = keep && cacheable(t);
  auto [scale, shift] =
      keep ? FoldedNorms::get().lookup(operands, eps) : scaleAndShift(operands, eps);
  std::vector<int64_t> shape(input.dim() - 1, 1);
  shape[0] = input.size(1);
  Counters::get().evalNorms += 1;
  at::Tensor out = at::empty_like(input);
  return at::addcmul_out(out, shift.view(shape), input, scale.view(shape));
}

void forgetKeptNorm(const at::Tensor &runningVar) {
  FoldedNorms::get().forget(runningVar);
}

void clearKeptNorms() {
  FoldedNorms::get().clear();
}

} // namespace rdna1
