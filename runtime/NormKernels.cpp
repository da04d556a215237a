// Kernels of rdna1::batch_norm and rdna1::instance_norm: ATen's native batch
// norm, which never calls cuDNN/MIOpen, on whatever device the input is, or
// in inference its one-kernel form (EvalBatchNorm.h). Both are compositions
// of differentiable ATen ops, so autograd comes for free.
#include "EvalBatchNorm.h"

#include <ATen/ATen.h>
#include <torch/library.h>

namespace rdna1 {
namespace {

at::Tensor nativeBatchNorm(const at::Tensor &input, const c10::optional<at::Tensor> &weight,
                           const c10::optional<at::Tensor> &bias,
                           const c10::optional<at::Tensor> &runningMean,
                           const c10::optional<at::Tensor> &runningVar, bool training,
                           double momentum, double eps) {
  if (input.numel() == 0) { // as aten::batch_norm: empty, but still part of the autograd graph
    at::Tensor out = input.clone();
    if (weight && weight->defined())
      out = out * (*weight)[0];
    if (bias && bias->defined())
      out = out + (*bias)[0];
    return out;
  }
  return std::get<0>(
      at::native_batch_norm(input, weight, bias, runningMean, runningVar, training, momentum, eps));
}

at::Tensor batchNorm(const at::Tensor &input, const c10::optional<at::Tensor> &weight,
                     const c10::optional<at::Tensor> &bias,
                     const c10::optional<at::Tensor> &runningMean,
                     const c10::optional<at::Tensor> &runningVar, bool training, double momentum,
                     double eps, bool /*cudnnEnabled*/) {
  const bool statistics =
      runningMean && runningMean->defined() && runningVar && runningVar->defined();
  if (!training && statistics)
    if (auto out = evalBatchNorm(input, weight, bias, *runningMean, *runningVar, eps))
      return *out;
  at::Tensor out =
      nativeBatchNorm(input, weight, bias, runningMean, runningVar, training, momentum, eps);
  if (training && statistics)
    forgetKeptNorm(*runningVar);
  return out;
}

at::Tensor repeatIfDefined(const c10::optional<at::Tensor> &tensor, int64_t times) {
  return tensor && tensor->defined() ? tensor->repeat(times) : at::Tensor();
}

// As ATen's instance_norm: one batch norm over (1, N*C, ...), with the running
// statistics averaged back over the batch.
at::Tensor instanceNorm(const at::Tensor &input, const c10::optional<at::Tensor> &weight,
                        const c10::optional<at::Tensor> &bias,
                        const c10::optional<at::Tensor> &runningMean,
                        const c10::optional<at::Tensor> &runningVar, bool useInputStats,
                        double momentum, double eps, bool /*cudnnEnabled*/) {
  TORCH_CHECK(useInputStats || (runningMean && runningVar),
              "rdna1::instance_norm: expected running_mean and running_var to be defined when "
              "use_input_stats is false");
  const int64_t batch = input.size(0);
  const int64_t channels = input.size(1);
  std::vector<int64_t> shape = input.sizes().vec();
  shape[0] = 1;
  shape[1] = batch * channels;
  const at::Tensor mean = repeatIfDefined(runningMean, batch);
  const at::Tensor var = repeatIfDefined(runningVar, batch);
  // ATen's kernel, not the cached inference form: the repeated operands are new on every call.
  const at::Tensor out =
      nativeBatchNorm(input.contiguous().view(shape), repeatIfDefined(weight, batch),
                      repeatIfDefined(bias, batch), mean, var, useInputStats, momentum, eps);
  if (runningMean && runningMean->defined())
    at::alias(*runningMean).copy_(mean.view({batch, channels}).mean(0, false));
  if (runningVar && runningVar->defined())
    at::alias(*runningVar).copy_(var.view({batch, channels}).mean(0, false));
  return out.view(input.sizes());
}

} // namespace
} // namespace rdna1

TORCH_LIBRARY_IMPL(rdna1, CompositeImplicitAutograd, m) {
  m.impl("batch_norm", &rdna1::batchNorm);
  m.impl("instance_norm", &rdna1::instanceNorm);
}
