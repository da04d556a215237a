// Kernels of rdna1::conv and friends, by backend (rdna1/Backend.h): host (move
// operands to the host, convolve there, move results back), device (the native
// convolution on the caller's device) or vendor (ATen's own convolution).
//
// rdna1::conv has a CompositeExplicitAutograd kernel (used directly under
// inference mode or with no gradients) and an Autograd kernel: on the host its
// backward also runs on the host; on the device the native convolution is a
// composition of differentiable ATen ops, whose backward autograd derives. The
// other ops are compositions of differentiable ATen ops and rdna1::conv, so
// autograd (and double backward) comes for free.
#include "Counters.h"
#include "HostConvolution.h"
#include "NativeConvolution.h"
#include "Transfer.h"

#include <rdna1/Backend.h>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace rdna1 {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// An absent bias as an undefined tensor, so it can sit in a TensorList.
at::Tensor orUndefined(const c10::optional<at::Tensor> &t) {
  return t ? *t : at::Tensor();
}

c10::optional<at::Tensor> optionalOf(const at::Tensor &t) {
  return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt;
}

// The host result on the caller's device, laid out as a convolution there
// would lay it out, whatever layout the host computed in.
at::Tensor onDeviceOf(const at::Tensor &out, const at::Tensor &input, const at::Tensor &weight) {
  return toDevice(out, input.device()).contiguous(convolutionOutputFormat(input, weight));
}

at::Tensor convOnHost(const at::Tensor &input, const at::Tensor &weight,
                      const c10::optional<at::Tensor> &bias, const ConvolutionArgs &args) {
  const std::vector<at::Tensor> host = toHost({input, weight, orUndefined(bias)});
  return onDeviceOf(hostConvolution(host[0], host[1], optionalOf(host[2]), args), input, weight);
}

// The convolution where it is: the device backend's native kernels, or ATen's.
at::Tensor convInPlace(Backend backend, const at::Tensor &input, const at::Tensor &weight,
                       const c10::optional<at::Tensor> &bias, const ConvolutionArgs &args) {
  if (backend == Backend::Device) {
    Counters::get().nativeConvolutions += 1;
    return nativeConvolution(input, weight, bias, args);
  }
  Counters::get().vendorConvolutions += 1;
  return at::convolution(input, weight, bias, args.stride, args.padding, args.dilation,
                         args.transposed, args.outputPadding, args.groups);
}

at::Tensor convKernel(const at::Tensor &input, const at::Tensor &weight,
                      const c10::optional<at::Tensor> &bias, c10::IntArrayRef stride,
                      c10::IntArrayRef padding, c10::IntArrayRef dilation, bool transposed,
                      c10::IntArrayRef outputPadding, int64_t groups) {
  const ConvolutionArgs args = makeConvolutionArgs(weight.dim(), stride, padding, dilation,
                                                   transposed, outputPadding, groups);
  const Backend backend = backendFor(input.device());
  return backend == Backend::Host ? convOnHost(input, weight, bias, args)
                                  : convInPlace(backend, input, weight, bias, args);
}

// The gradients from `host` (grad output, input and weight, on the host), each
// moved to its entry of `devices` (input, weight, bias).
std::tuple<at::Tensor, at::Tensor, at::Tensor>
convBackwardOnHost(const std::vector<at::Tensor> &host, c10::OptionalIntArrayRef biasSizes,
                   const ConvolutionArgs &args, std::array<bool, 3> outputMask,
                   const std::vector<c10::Device> &devices) {
  auto [gradInput, gradWeight, gradBias] =
      hostConvolutionBackward(host[0], host[1], host[2], biasSizes, args, outputMask);
  const std::vector<at::Tensor> moved = toDevices({gradInput, gradWeight, gradBias}, devices);
  return {moved[0], moved[1], moved[2]};
}

// Saved for backward: the caller's input and weight (for double backward,
// which must differentiate through the transfers) and their host copies (so a
// plain backward does not move them across the bus again).
class HostConvolutionFunction : public torch::autograd::Function<HostConvolutionFunction> {
public:
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &input, const at::Tensor &weight,
                            const c10::optional<at::Tensor> &bias, const ConvolutionArgs &args) {
    at::AutoDispatchBelowADInplaceOrView belowAutograd;
    const std::vector<at::Tensor> host = toHost({input, weight, orUndefined(bias)});
    const at::Tensor &hostInput = host[0];
    const at::Tensor &hostWeight = host[1];
    at::Tensor out = hostConvolution(hostInput, hostWeight, optionalOf(host[2]), args);
    const bool hasBias = bias && bias->defined();
    ctx->save_for_backward({input, weight, hostInput, hostWeight});
    ctx->saved_data["stride"] = args.stride;
    ctx->saved_data["padding"] = args.padding;
    ctx->saved_data["dilation"] = args.dilation;
    ctx->saved_data["transposed"] = args.transposed;
    ctx->saved_data["output_padding"] = args.outputPadding;
    ctx->saved_data["groups"] = args.groups;
    ctx->saved_data["bias_size"] = hasBias ? bias->size(0) : int64_t{-1};
    ctx->saved_data["bias_device"] = hasBias ? bias->device() : input.device();
    return onDeviceOf(out, input, weight);
  }

  static variable_list backward(AutogradContext *ctx, variable_list gradOutputs) {
    const auto saved = ctx->get_saved_variables();
    ConvolutionArgs args;
    args.stride = ctx->saved_data["stride"].toIntVector();
    args.padding = ctx->saved_data["padding"].toIntVector();
    args.dilation = ctx->saved_data["dilation"].toIntVector();
    args.transposed = ctx->saved_data["transposed"].toBool();
    args.outputPadding = ctx->saved_data["output_padding"].toIntVector();
    args.groups = ctx->saved_data["groups"].toInt();
    const int64_t biasSize = ctx->saved_data["bias_size"].toInt();
    const bool hasBias = biasSize >= 0;
    const std::vector<int64_t> biasSizes{biasSize};

    // Autograd edges exist for tensor inputs only: input, weight, then bias if given.
    const std::array<bool, 3> mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                   hasBias && ctx->needs_input_grad(2)};
    // Under create_graph the gradient must be differentiable w.r.t. the caller's
    // tensors, so recompute from them rather than from the detached host copies.
    // Else only the gradient crosses: the host copies are where they must be
    // (handing them to toHost would copy them again on the stand-in device).
    const std::vector<at::Tensor> host =
        at::GradMode::is_enabled()
            ? toHost({gradOutputs[0], saved[0], saved[1]})
            : std::vector<at::Tensor>{toHost(gradOutputs[0]), saved[2], saved[3]};
    auto [gradInput, gradWeight, gradBias] = convBackwardOnHost(
        host, hasBias ? c10::OptionalIntArrayRef(biasSizes) : c10::nullopt, args, mask,
        {saved[0].device(), saved[1].device(), ctx->saved_data["bias_device"].toDevice()});
    return {gradInput, gradWeight, gradBias, at::Tensor()};
  }
};

at::Tensor convAutograd(const at::Tensor &input, const at::Tensor &weight,
                        const c10::optional<at::Tensor> &bias, c10::IntArrayRef stride,
                        c10::IntArrayRef padding, c10::IntArrayRef dilation, bool transposed,
                        c10::IntArrayRef outputPadding, int64_t groups) {
  const bool differentiable =
      at::GradMode::is_enabled() &&
      (input.requires_grad() || weight.requires_grad() || (bias && bias->requires_grad()));
  if (!differentiable) {
    // The op itself below autograd, as under inference mode: a tracer (torch.export's
    // decompositions, AOTInductor) then records one rdna1::conv call, not the kernels of the
    // backend that the tracing process would pick.
    static const auto op = c10::Dispatcher::singleton()
                               .findSchemaOrThrow("rdna1::conv", "")
                               .typed<decltype(convKernel)>();
    at::AutoDispatchBelowADInplaceOrView belowAutograd;
    return op.call(input, weight, bias, stride, padding, dilation, transposed, outputPadding,
                   groups);
  }
  const ConvolutionArgs args = makeConvolutionArgs(weight.dim(), stride, padding, dilation,
                                                   transposed, outputPadding, groups);
  const Backend backend = backendFor(input.device());
  if (backend == Backend::Host)
    return HostConvolutionFunction::apply(input, weight, bias, args);
  return convInPlace(backend, input, weight, bias, args); // autograd records the ATen ops
}

at::Tensor callConv(const at::Tensor &input, const at::Tensor &weight,
                    const c10::optional<at::Tensor> &bias, c10::IntArrayRef stride,
                    c10::IntArrayRef padding, c10::IntArrayRef dilation, int64_t groups) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rdna1::conv", "")
                             .typed<decltype(convKernel)>();
  const std::vector<int64_t> noOutputPadding;
  return op.call(input, weight, bias, stride, padding, dilation, false, noOutputPadding, groups);
}

// 'valid' is zero padding; 'same' pads by dilation * (kernel - 1) in total,
// the odd element on the far side, as ATen's _convolution_mode does.
at::Tensor convStringPadding(const at::Tensor &input, const at::Tensor &weight,
                             const c10::optional<at::Tensor> &bias, c10::IntArrayRef stride,
                             c10::string_view padding, c10::IntArrayRef dilation, int64_t groups) {
  const int64_t spatial = weight.dim() - 2;
  if (padding == "valid")
    return callConv(input, weight, bias, stride, std::vector<int64_t>(spatial, 0), dilation,
                    groups);
  TORCH_CHECK(padding == "same", "rdna1::conv: invalid padding string '", padding,
              "', should be 'same' or 'valid'");
  const ConvolutionArgs args =
      makeConvolutionArgs(weight.dim(), stride, {0}, dilation, false, {}, groups);
  for (int64_t s : args.stride)
    TORCH_CHECK(s == 1, "rdna1::conv: padding='same' is not supported for strided convolutions");
  std::vector<int64_t> symmetric(spatial);
  std::vector<int64_t> extra(2 * spatial, 0); // constant_pad_nd order: last dim first
  bool asymmetric = false;
  for (int64_t i = 0; i < spatial; ++i) {
    const int64_t total = args.dilation[i] * (weight.size(i + 2) - 1);
    symmetric[i] = total / 2;
    const int64_t rest = total - 2 * symmetric[i];
    extra[2 * (spatial - 1 - i) + 1] = rest;
    asymmetric = asymmetric || rest != 0;
  }
  const at::Tensor padded = asymmetric ? at::constant_pad_nd(input, extra, 0) : input;
  return callConv(padded, weight, bias, stride, symmetric, dilation, groups);
}

// The gradients of the native convolution, by autograd over a fresh graph.
// (Not differentiable again: a graph that spells out convolution_backward and
// then differentiates it runs on the host or vendor backends.)
std::tuple<at::Tensor, at::Tensor, at::Tensor>
convBackwardNative(const at::Tensor &gradOutput, const at::Tensor &input, const at::Tensor &weight,
                   c10::OptionalIntArrayRef biasSizes, const ConvolutionArgs &args,
                   std::array<bool, 3> outputMask) {
  at::AutoGradMode enable(true);
  const at::Tensor x = input.detach().requires_grad_(outputMask[0]);
  const at::Tensor w = weight.detach().requires_grad_(outputMask[1]);
  at::Tensor b;
  if (biasSizes)
    b = at::zeros(*biasSizes, weight.options()).requires_grad_(outputMask[2]);
  std::vector<at::Tensor> wrt;
  for (const at::Tensor &t : {x, w, b})
    if (t.defined() && t.requires_grad())
      wrt.push_back(t);
  std::array<at::Tensor, 3> grads;
  if (!wrt.empty()) {
    Counters::get().nativeConvolutions += 1;
    const at::Tensor out = nativeConvolution(x, w, b, args);
    const auto computed = torch::autograd::grad({out}, wrt, {gradOutput});
    size_t k = 0;
    for (size_t i = 0; i < 3; ++i)
      if (outputMask[i] && (i < 2 || b.defined()))
        grads[i] = computed[k++];
  }
  return {grads[0], grads[1], grads[2]};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor>
convBackwardKernel(const at::Tensor &gradOutput, const at::Tensor &input, const at::Tensor &weight,
                   c10::OptionalIntArrayRef biasSizes, c10::IntArrayRef stride,
                   c10::IntArrayRef padding, c10::IntArrayRef dilation, bool transposed,
                   c10::IntArrayRef outputPadding, int64_t groups, std::array<bool, 3> outputMask) {
  const ConvolutionArgs args = makeConvolutionArgs(weight.dim(), stride, padding, dilation,
                                                   transposed, outputPadding, groups);
  switch (backendFor(input.device())) {
  case Backend::Device:
    return convBackwardNative(gradOutput, input, weight, biasSizes, args, outputMask);
  case Backend::Vendor:
    Counters::get().vendorConvolutions += 1;
    return at::convolution_backward(gradOutput, input, weight, biasSizes, args.stride, args.padding,
                                    args.dilation, args.transposed, args.outputPadding, args.groups,
                                    outputMask);
  default:
    return convBackwardOnHost(toHost({gradOutput, input, weight}), biasSizes, args, outputMask,
                              {input.device(), weight.device(), weight.device()});
  }
}

} // namespace
} // namespace rdna1

TORCH_LIBRARY_IMPL(rdna1, CompositeExplicitAutograd, m) {
  m.impl("conv", &rdna1::convKernel);
}

TORCH_LIBRARY_IMPL(rdna1, Autograd, m) {
  m.impl("conv", &rdna1::convAutograd);
}

TORCH_LIBRARY_IMPL(rdna1, CompositeImplicitAutograd, m) {
  m.impl("conv.padding", &rdna1::convStringPadding);
  m.impl("conv_backward", &rdna1::convBackwardKernel);
}
