// Sets the cudnn_enabled argument of aten::batch_norm, instance_norm,
// layer_norm and group_norm to a constant false: with it on, ROCm builds of
// PyTorch route batch norm to MIOpen, which crashes on RDNA1.
#pragma once

#include "RewriteCounts.h"

#include <torch/csrc/jit/ir/ir.h>

namespace rdna1::passes {

RewriteCounts DisableCudnnInNorms(const std::shared_ptr<torch::jit::Graph> &graph);

} // namespace rdna1::passes
