// Convolution forward and backward on host (CPU) tensors through ATen, so
// oneDNN does the work. No device logic here: callers move tensors.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>
#include <c10/util/OptionalArrayRef.h>

#include <array>
#include <cstdint>
#include <tuple>
#include <vector>

namespace rdna1 {

// Convolution hyper-parameters, expanded to one entry per spatial dimension.
struct ConvolutionArgs {
  std::vector<int64_t> stride;
  std::vector<int64_t> padding;
  std::vector<int64_t> dilation;
  bool transposed = false;
  std::vector<int64_t> outputPadding;
  int64_t groups = 1;
};

// Builds ConvolutionArgs for a weight of `weightDim` dimensions, broadcasting
// single-element lists the way ATen does.
ConvolutionArgs makeConvolutionArgs(int64_t weightDim, c10::IntArrayRef stride,
                                    c10::IntArrayRef padding, c10::IntArrayRef dilation,
                                    bool transposed, c10::IntArrayRef outputPadding,
                                    int64_t groups);

at::Tensor hostConvolution(const at::Tensor &input, const at::Tensor &weight,
                           const c10::optional<at::Tensor> &bias, const ConvolutionArgs &args);

// Gradients for the inputs selected by `outputMask` (input, weight, bias);
// the others are undefined. Each gradient has the dtype of its tensor.
std::tuple<at::Tensor, at::Tensor, at::Tensor>
hostConvolutionBackward(const at::Tensor &gradOutput, const at::Tensor &input,
                        const at::Tensor &weight, c10::OptionalIntArrayRef biasSizes,
                        const ConvolutionArgs &args, std::array<bool, 3> outputMask);

} // namespace rdna1
