// Eager kernels for aten::convolution, aten::_convolution and aten::batch_norm
// (EagerKernels.h). Convolutions go to rdna1::conv, whose kernels pick the
// backend (rdna1/Backend.h): the same decision as for rewritten models. Only
// vendor is decided here, because rdna1::conv's vendor path calls
// aten::convolution, which would come back to these kernels.
#include "EagerKernels.h"

#include <rdna1/Backend.h>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/_convolution_native.h>
#include <ATen/ops/convolution_native.h>
#include <torch/autograd.h>

namespace rdna1::eager {
namespace {

using Optional = c10::optional<at::Tensor>;

// Set while the runtime (or a vendor call) runs on this thread: convolutions
// it calls itself reach ATen's own kernels. With the kernels registered for
// CPU tensors (tests), the host backend's CPU convolution would otherwise
// come back here forever.
thread_local int passThroughDepth = 0;

class PassThroughScope {
public:
  PassThroughScope() { ++passThroughDepth; }
  ~PassThroughScope() { --passThroughDepth; }
  PassThroughScope(const PassThroughScope &) = delete;
  PassThroughScope &operator=(const PassThroughScope &) = delete;
};

bool runsOriginal(const at::Tensor &input) {
  return passThroughDepth > 0 || backendFor(input.device()) == Backend::Vendor;
}

at::Tensor callRuntimeConvolution(const at::Tensor &input, const at::Tensor &weight,
                                  const Optional &bias, c10::IntArrayRef stride,
                                  c10::IntArrayRef padding, c10::IntArrayRef dilation,
                                  bool transposed, c10::IntArrayRef outputPadding, int64_t groups) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("rdna1::conv", "")
          .typed<at::Tensor(const at::Tensor &, const at::Tensor &, const Optional &,
                            c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef, bool,
                            c10::IntArrayRef, int64_t)>();
  PassThroughScope inRuntime;
  return op.call(input, weight, bias, stride, padding, dilation, transposed, outputPadding, groups);
}

// The original convolution with ATen's own derivative (convolution_backward,
// cuDNN/MIOpen allowed), for the vendor backend at the autograd key: the
// autograd kernel this registration hides cannot be called.
class VendorConvolutionFunction : public torch::autograd::Function<VendorConvolutionFunction> {
public:
  static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &input,
                            const at::Tensor &weight, const Optional &bias, c10::IntArrayRef stride,
                            c10::IntArrayRef padding, c10::IntArrayRef dilation, bool transposed,
                            c10::IntArrayRef outputPadding, int64_t groups) {
    ctx->save_for_backward({input, weight});
    ctx->saved_data["stride"] = stride.vec();
    ctx->saved_data["padding"] = padding.vec();
    ctx->saved_data["dilation"] = dilation.vec();
    ctx->saved_data["transposed"] = transposed;
    ctx->saved_data["output_padding"] = outputPadding.vec();
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["bias_size"] = bias && bias->defined() ? bias->size(0) : int64_t{-1};
    at::AutoDispatchBelowADInplaceOrView belowAutograd;
    PassThroughScope original;
    return at::native::convolution(input, weight, bias, stride, padding, dilation, transposed,
                                   outputPadding, groups);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const int64_t biasSize = ctx->saved_data["bias_size"].toInt();
    const std::vector<int64_t> biasSizes{biasSize};
    const std::array<bool, 3> mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                   biasSize >= 0 && ctx->needs_input_grad(2)};
    auto [gradInput, gradWeight, gradBias] = at::convolution_backward(
        grads[0], saved[0], saved[1],
        biasSize >= 0 ? c10::OptionalIntArrayRef(biasSizes) : c10::nullopt,
        ctx->saved_data["stride"].toIntVector(), ctx->saved_data["padding"].toIntVector(),
        ctx->saved_data["dilation"].toIntVector(), ctx->saved_data["transposed"].toBool(),
        ctx->saved_data["output_padding"].toIntVector(), ctx->saved_data["groups"].toInt(), mask);
    return {gradInput, gradWeight, gradBias, {}, {}, {}, {}, {}, {}};
  }
};

at::Tensor convolutionAutograd(const at::Tensor &input, const at::Tensor &weight,
                               const Optional &bias, c10::IntArrayRef stride,
                               c10::IntArrayRef padding, c10::IntArrayRef dilation, bool transposed,
                               c10::IntArrayRef outputPadding, int64_t groups) {
  if (runsOriginal(input))
    return VendorConvolutionFunction::apply(input, weight, bias, stride, padding, dilation,
                                            transposed, outputPadding, groups);
  return callRuntimeConvolution(input, weight, bias, stride, padding, dilation, transposed,
                                outputPadding, groups);
}

// Below autograd (inference mode, or called by an autograd kernel): no graph to record.
at::Tensor convolutionBelowAutograd(const at::Tensor &input, const at::Tensor &weight,
                                    const Optional &bias, c10::IntArrayRef stride,
                                    c10::IntArrayRef padding, c10::IntArrayRef dilation,
                                    bool transposed, c10::IntArrayRef outputPadding,
                                    int64_t groups) {
  if (runsOriginal(input)) {
    PassThroughScope original;
    return at::native::convolution(input, weight, bias, stride, padding, dilation, transposed,
                                   outputPadding, groups);
  }
  return callRuntimeConvolution(input, weight, bias, stride, padding, dilation, transposed,
                                outputPadding, groups);
}

// aten::_convolution's extra flags choose among ATen's kernels (benchmarking,
// determinism, cuDNN, TF32); the runtime's kernels have no such choices. Only
// ATen's own kernel, below autograd, still reads them.
at::Tensor underscoreConvolutionAutograd(const at::Tensor &input, const at::Tensor &weight,
                                         const Optional &bias, c10::IntArrayRef stride,
                                         c10::IntArrayRef padding, c10::IntArrayRef dilation,
                                         bool transposed, c10::IntArrayRef outputPadding,
                                         int64_t groups, bool /*benchmark*/, bool /*deterministic*/,
                                         bool /*cudnnEnabled*/, bool /*allowTf32*/) {
  return convolutionAutograd(input, weight, bias, stride, padding, dilation, transposed,
                             outputPadding, groups);
}

at::Tensor underscoreConvolutionBelowAutograd(const at::Tensor &input, const at::Tensor &weight,
                                              const Optional &bias, c10::IntArrayRef stride,
                                              c10::IntArrayRef padding, c10::IntArrayRef dilation,
                                              bool transposed, c10::IntArrayRef outputPadding,
                                              int64_t groups, bool benchmark, bool deterministic,
                                              bool cudnnEnabled, bool allowTf32) {
  if (runsOriginal(input)) {
    PassThroughScope original;
    return at::native::_convolution(input, weight, bias, stride, padding, dilation, transposed,
                                    outputPadding, groups, benchmark, deterministic, cudnnEnabled,
                                    allowTf32);
  }
  return callRuntimeConvolution(input, weight, bias, stride, padding, dilation, transposed,
                                outputPadding, groups);
}

// The overload without allow_tf32 (older callers): ATen's default for it.
template <at::Tensor (*Convolution)(const at::Tensor &, const at::Tensor &, const Optional &,
                                    c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef, bool,
                                    c10::IntArrayRef, int64_t, bool, bool, bool, bool)>
at::Tensor withDefaultTf32(const at::Tensor &input, const at::Tensor &weight, const Optional &bias,
                           c10::IntArrayRef stride, c10::IntArrayRef padding,
                           c10::IntArrayRef dilation, bool transposed,
                           c10::IntArrayRef outputPadding, int64_t groups, bool benchmark,
                           bool deterministic, bool cudnnEnabled) {
  return Convolution(input, weight, bias, stride, padding, dilation, transposed, outputPadding,
                     groups, benchmark, deterministic, cudnnEnabled,
                     at::globalContext().allowTF32CuDNN());
}

// Always ATen's native batch norm, as in rewritten models; the running
// statistics are updated in place by native_batch_norm as by cuDNN/MIOpen.
// ATen's instance_norm calls aten::batch_norm, so it comes here too.
at::Tensor batchNorm(const at::Tensor &input, const Optional &weight, const Optional &bias,
                     const Optional &runningMean, const Optional &runningVar, bool training,
                     double momentum, double eps, bool cudnnEnabled) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("rdna1::batch_norm", "")
          .typed<at::Tensor(const at::Tensor &, const Optional &, const Optional &,
                            const Optional &, const Optional &, bool, double, double, bool)>();
  return op.call(input, weight, bias, runningMean, runningVar, training, momentum, eps,
                 cudnnEnabled);
}

} // namespace

void registerConvolutionAndNormKernels(torch::Library &autogradKey, torch::Library &backendKey) {
  autogradKey.impl("convolution", TORCH_FN(convolutionAutograd));
  autogradKey.impl("_convolution", TORCH_FN(underscoreConvolutionAutograd));
  autogradKey.impl("_convolution.deprecated",
                   TORCH_FN(withDefaultTf32<underscoreConvolutionAutograd>));
  autogradKey.impl("batch_norm", TORCH_FN(batchNorm));
  backendKey.impl("convolution", TORCH_FN(convolutionBelowAutograd));
  backendKey.impl("_convolution", TORCH_FN(underscoreConvolutionBelowAutograd));
  backendKey.impl("_convolution.deprecated",
                  TORCH_FN(withDefaultTf32<underscoreConvolutionBelowAutograd>));
  backendKey.impl("batch_norm", TORCH_FN(batchNorm));
}

} // namespace rdna1::eager
