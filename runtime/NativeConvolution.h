// Convolution (1-3 d, transposed or not, any groups) composed only of
// differentiable ATen ops: im2col/col2im, unfold, matmul, padding and views.
// Autograd derives its backward (and double backward) from those ops, so
// neither direction ever reaches convolution_backward. That matters on ROCm:
// convolution_backward consults the process-global cuDNN/MIOpen flag and
// reaches MIOpen, which crashes on RDNA1 GPUs.
#pragma once

#include "HostConvolution.h"

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

namespace rdna1 {

// The layout of a convolution's result: channels-last when either operand is
// (4-d and 5-d inputs), as cuDNN, MIOpen and oneDNN answer, and as the next
// layer expects; else contiguous.
c10::MemoryFormat convolutionOutputFormat(const at::Tensor &input, const at::Tensor &weight);

// Same result as at::convolution with the same arguments, on any device.
at::Tensor nativeConvolution(const at::Tensor &input, const at::Tensor &weight,
                             const c10::optional<at::Tensor> &bias, const ConvolutionArgs &args);

} // namespace rdna1
