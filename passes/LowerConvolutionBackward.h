// Rewrites explicit aten::convolution_backward nodes into rdna1::conv_backward.
#pragma once

#include "RewriteCounts.h"

#include <torch/csrc/jit/ir/ir.h>

namespace rdna1::passes {

RewriteCounts LowerConvolutionBackward(const std::shared_ptr<torch::jit::Graph> &graph);

} // namespace rdna1::passes
