// Kernels of rdna1::batch_norm and rdna1::instance_norm: ATen's native batch
// norm, which never calls cuDNN/MIOpen, on whatever device the input is, or
// in inference its one-kernel form (EvalBatchNorm.h). Both are compositions
// of differentiable ATen ops, so autograd comes for free. So is
// rdna1::conv_batch_norm, a convolution whose norm is folded into it in
// inference.
#include "EvalBatchNorm.h"

#include <rdna1/Backend.h>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
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

using ConvSignature = at::Tensor(const at::Tensor &, const at::Tensor &,
                                 const c10::optional<at::Tensor> &, c10::IntArrayRef,
                                 c10::IntArrayRef, c10::IntArrayRef, bool, c10::IntArrayRef,
                                 int64_t);
using BatchNormSignature = decltype(batchNorm);

// rdna1::batch_norm(rdna1::conv(...)); in inference with backend device, the
// convolution alone with the norm folded into its weight and bias (one pass
// over the output fewer: the UNet b2's inference on the H200 took 0.92x the
// time of the two ops, bench/RESULTS.md). Backend host keeps the two ops,
// whose operands its regions have placed.
at::Tensor convBatchNorm(const at::Tensor &input, const at::Tensor &weight,
                         const c10::optional<at::Tensor> &bias, c10::IntArrayRef stride,
                         c10::IntArrayRef padding, c10::IntArrayRef dilation, bool transposed,
                         c10::IntArrayRef outputPadding, int64_t groups,
                         const c10::optional<at::Tensor> &normWeight,
                         const c10::optional<at::Tensor> &normBias,
                         const c10::optional<at::Tensor> &runningMean,
                         const c10::optional<at::Tensor> &runningVar, bool training,
                         double momentum, double eps, bool cudnnEnabled) {
  static const auto conv =
      c10::Dispatcher::singleton().findSchemaOrThrow("rdna1::conv", "").typed<ConvSignature>();
  static const auto norm = c10::Dispatcher::singleton()
                               .findSchemaOrThrow("rdna1::batch_norm", "")
                               .typed<BatchNormSignature>();
  const bool statistics =
      runningMean && runningMean->defined() && runningVar && runningVar->defined();
  const bool inputRecorded = at::GradMode::is_enabled() && input.requires_grad();
  if (!training && statistics && !transposed && !inputRecorded && input.numel() > 0 &&
      input.scalar_type() == weight.scalar_type() && backendFor(input.device()) == Backend::Device)
    if (const auto folded =
            foldedConvolution(weight, bias, normWeight, normBias, *runningMean, *runningVar, eps))
      return conv.call(input, folded->first, folded->second, stride, padding, dilation, false,
                       outputPadding, groups);
  const at::Tensor out =
      conv.call(input, weight, bias, stride, padding, dilation, transposed, outputPadding, groups);
  if (training) { // F.batch_norm's check, which the rewrite moved after this call
    int64_t values = out.size(0);
    for (int64_t i = 2; i < out.dim(); ++i)
      values *= out.size(i);
    TORCH_CHECK_VALUE(values != 1,
                      "Expected more than 1 value per channel when training, got input size ",
                      out.sizes());
  }
  return norm.call(out, normWeight, normBias, runningMean, runningVar, training, momentum, eps,
                   cudnnEnabled);
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
  m.impl("conv_batch_norm", &rdna1::convBatchNorm);
}
