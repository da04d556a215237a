// Rewrites aten::batch_norm and aten::instance_norm into rdna1::batch_norm and
// rdna1::instance_norm (same arguments), which use ATen's native kernels.
// PyTorch 2.x ignores the cudnn_enabled argument and routes batch norm to
// cuDNN/MIOpen whenever the global flag allows, so only a different op is safe.
#pragma once

#include "RewriteCounts.h"

#include <torch/csrc/jit/ir/ir.h>

namespace rdna1::passes {

RewriteCounts LowerBatchNorms(const std::shared_ptr<torch::jit::Graph> &graph);

} // namespace rdna1::passes
