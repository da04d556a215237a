// Rewrites every forward convolution spelling (aten::conv1d/2d/3d and their
// string-padding overloads, conv_transpose1d/2d/3d, _convolution,
// convolution, _convolution_mode, and explicit cudnn_/miopen_/mkldnn_
// convolutions) into rdna1::conv, which convolves on the host.
#pragma once

#include "RewriteCounts.h"

#include <torch/csrc/jit/ir/ir.h>

namespace rdna1::passes {

RewriteCounts LowerConvolutions(const std::shared_ptr<torch::jit::Graph> &graph);

} // namespace rdna1::passes

namespace rdna1::passes {

// True for the node kinds LowerConvolutions rewrites.
bool isConvolutionSpelling(c10::Symbol kind);

} // namespace rdna1::passes
