// Kernels of the region boundaries rdna1::to_host, rdna1::to_device and
// rdna1::host_params. Each has a plain kernel (inference mode, no gradients)
// and an Autograd kernel whose backward moves the gradients back, batched.
// Where convolutions do not run on the host (backends device and vendor) the
// boundaries move nothing: the region's ops run where the tensors are.
#include "BatchedTransfer.h"
#include "HostParamCache.h"
#include "ProfileScope.h"
#include "StandInDevice.h"

#include <rdna1/Backend.h>

#include <ATen/ATen.h>
#include <algorithm>
#include <torch/autograd.h>
#include <torch/library.h>

namespace rdna1 {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::vector<c10::Device> devicesOf(at::TensorList tensors, c10::Device fallback) {
  std::vector<c10::Device> devices;
  for (const at::Tensor &t : tensors)
    devices.push_back(t.defined() ? t.device() : fallback);
  return devices;
}

void saveDevices(AutogradContext *ctx, const std::vector<c10::Device> &devices) {
  std::vector<std::string> names;
  for (const c10::Device &device : devices)
    names.push_back(device.str());
  ctx->saved_data["devices"] = names;
}

std::vector<c10::Device> savedDevices(AutogradContext *ctx) {
  std::vector<c10::Device> devices;
  for (const c10::IValue &name : ctx->saved_data["devices"].toListRef())
    devices.emplace_back(name.toStringRef());
  return devices;
}

// A custom Function may not return its inputs as they are (autograd would
// then forbid in-place ops on them): hand back a new tensor over the same data.
// Outputs of inputs that need no gradient (running statistics beside weights,
// integer tensors) are marked non-differentiable, so they do not inherit
// requires_grad from the others.
variable_list freshOutputs(AutogradContext *ctx, at::TensorList inputs,
                           std::vector<at::Tensor> outputs) {
  RDNA1_PROFILE_SCOPE("rdna1::fresh_outputs");
  variable_list constant;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].defined())
      continue;
    if (outputs[i].is_same(inputs[i]))
      outputs[i] = at::empty({0}, inputs[i].options()).set_(inputs[i]);
    if (!inputs[i].requires_grad())
      constant.push_back(outputs[i]);
  }
  ctx->mark_non_differentiable(constant);
  return outputs;
}

// Whether nothing would move (the stand-in device moves host tensors too).
bool allOn(at::TensorList tensors, const std::vector<c10::Device> &devices) {
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].defined() && needsMove(tensors[i], devices[i]))
      return false;
  return true;
}

std::vector<c10::Device> hostDevices(size_t count) {
  return std::vector<c10::Device>(count, c10::Device(at::kCPU));
}

// Whether the region of these tensors convolves on the host, so they must cross.
bool regionOnHost(at::TensorList tensors) {
  for (const at::Tensor &t : tensors)
    if (t.defined())
      return backendFor(t.device()) == Backend::Host;
  return true;
}

// Moves tensors across the bus, batched (BatchedTransfer.h): to the host when
// every target is the host, else to each target. Its backward is the same
// move the other way, itself a MoveFunction, so gradients of any order cross.
class MoveFunction : public torch::autograd::Function<MoveFunction> {
public:
  static variable_list forward(AutogradContext *ctx, at::TensorList tensors,
                               const std::vector<c10::Device> &targets) {
    at::AutoDispatchBelowADInplaceOrView belowAutograd;
    saveDevices(ctx, devicesOf(tensors, at::kCPU));
    const bool toHost = std::all_of(targets.begin(), targets.end(),
                                    [](const c10::Device &d) { return d.is_cpu(); });
    return freshOutputs(ctx, tensors,
                        toHost ? batchedToHost(tensors) : batchedToDevices(tensors, targets));
  }
  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    RDNA1_PROFILE_SCOPE("rdna1::move_gradients");
    // As a TensorList: autograd tracks tensor and TensorList arguments, not vectors.
    variable_list out = MoveFunction::apply(at::TensorList(grads), savedDevices(ctx));
    out.emplace_back(); // no gradient for the targets
    return out;
  }
};

// Cached host copies of parameters; gradients cross back as a MoveFunction.
class HostParamsFunction : public torch::autograd::Function<HostParamsFunction> {
public:
  static variable_list forward(AutogradContext *ctx, at::TensorList params) {
    at::AutoDispatchBelowADInplaceOrView belowAutograd;
    saveDevices(ctx, devicesOf(params, at::kCPU));
    return freshOutputs(ctx, params, HostParamCache::get().lookup(params));
  }
  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    return MoveFunction::apply(at::TensorList(grads), savedDevices(ctx));
  }
};

std::vector<at::Tensor> toHostKernel(at::TensorList tensors) {
  return regionOnHost(tensors) ? batchedToHost(tensors) : tensors.vec();
}

// Results of a region, on the device, in the layout the model would have given
// them there (inLayoutOf): the change happens on the device, where it is cheap.
std::vector<at::Tensor> eachInLayoutOf(std::vector<at::Tensor> tensors, const at::Tensor &like) {
  for (at::Tensor &t : tensors)
    t = inLayoutOf(t, like);
  return tensors;
}

std::vector<at::Tensor> toDeviceKernel(at::TensorList tensors, const at::Tensor &like) {
  if (!regionOnHost({like}))
    return tensors.vec();
  return eachInLayoutOf(
      batchedToDevices(tensors, std::vector<c10::Device>(tensors.size(), like.device())), like);
}

std::vector<at::Tensor> hostParamsKernel(at::TensorList params) {
  return regionOnHost(params) ? HostParamCache::get().lookup(params) : params.vec();
}

// With nothing to move (a model running on the CPU, or convolving on the
// device) the boundaries are free.
std::vector<at::Tensor> toHostAutograd(at::TensorList tensors) {
  if (!regionOnHost(tensors) || allOn(tensors, hostDevices(tensors.size())))
    return tensors.vec();
  return MoveFunction::apply(tensors, hostDevices(tensors.size()));
}

std::vector<at::Tensor> toDeviceAutograd(at::TensorList tensors, const at::Tensor &like) {
  if (!regionOnHost({like}) ||
      allOn(tensors, std::vector<c10::Device>(tensors.size(), like.device())))
    return tensors.vec();
  return eachInLayoutOf(
      MoveFunction::apply(tensors, std::vector<c10::Device>(tensors.size(), like.device())), like);
}

std::vector<at::Tensor> hostParamsAutograd(at::TensorList params) {
  if (!regionOnHost(params) || allOn(params, hostDevices(params.size())))
    return params.vec();
  return HostParamsFunction::apply(params);
}

c10::optional<at::Tensor> hostParamKernel(const c10::optional<at::Tensor> &param) {
  if (!param || !param->defined())
    return c10::nullopt;
  return hostParamsKernel({*param})[0];
}

c10::optional<at::Tensor> hostParamAutograd(const c10::optional<at::Tensor> &param) {
  if (!param || !param->defined())
    return c10::nullopt;
  return hostParamsAutograd({*param})[0];
}

void copyBackKernel(at::TensorList targets, at::TensorList sources) {
  TORCH_CHECK(targets.size() == sources.size(), "rdna1::copy_back: ", targets.size(),
              " targets but ", sources.size(), " sources");
  std::vector<at::Tensor> moving;
  std::vector<c10::Device> devices;
  std::vector<size_t> at;
  for (size_t i = 0; i < targets.size(); ++i)
    if (!targets[i].is_same(sources[i])) {
      moving.push_back(sources[i]);
      devices.push_back(targets[i].device());
      at.push_back(i);
    }
  const std::vector<at::Tensor> moved = batchedToDevices(moving, devices);
  at::NoGradGuard noGrad;
  for (size_t k = 0; k < moved.size(); ++k)
    targets[at[k]].copy_(moved[k]);
}

} // namespace
} // namespace rdna1

TORCH_LIBRARY_IMPL(rdna1, CompositeExplicitAutograd, m) {
  m.impl("to_host", &rdna1::toHostKernel);
  m.impl("to_device", &rdna1::toDeviceKernel);
  m.impl("host_params", &rdna1::hostParamsKernel);
  m.impl("host_param", &rdna1::hostParamKernel);
  m.impl("copy_back", &rdna1::copyBackKernel);
}

TORCH_LIBRARY_IMPL(rdna1, Autograd, m) {
  m.impl("to_host", &rdna1::toHostAutograd);
  m.impl("to_device", &rdna1::toDeviceAutograd);
  m.impl("host_params", &rdna1::hostParamsAutograd);
  m.impl("host_param", &rdna1::hostParamAutograd);
}
