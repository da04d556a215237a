// Turns rdna1::batch_norm(rdna1::conv(...)) into one rdna1::conv_batch_norm
// call, where the norm is the convolution's only use. The runtime folds the
// norm into the convolution's weight and bias when it runs in inference with
// backend device, and runs the two ops as written otherwise (training mode,
// recorded gradients, backend host), so what the model computes in any mode
// and on any backend is unchanged. The fold happens at run time, from the
// parameters and statistics the model has then: rewriting cannot bake it in,
// since a model that trains later changes them.
//
// Run it last: the region passes place the convolution and the norm each on
// its own, and a model rewritten again finds no pair left.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <memory>
#include <string>
#include <vector>

namespace rdna1::passes {

struct ConvNormFusion {
  int fused = 0;
  // Pairs left as two calls, and why: "<why> x<count>".
  std::vector<std::string> declined;
};

ConvNormFusion FuseConvBatchNorm(const std::shared_ptr<torch::jit::Graph> &graph);

} // namespace rdna1::passes
