// Rewrites aten::lstm, aten::gru, aten::rnn_tanh and aten::rnn_relu (padded
// `input` and packed `data` overloads) into their rdna1:: twins, same
// arguments, which run ATen's native cells where the backend says: aten's own
// RNNs pick cuDNN/MIOpen from the process-global flag, and MIOpen's RNNs fail
// on RDNA1. Other overloads, if any appear, stay for FindRemainingDnnUsers.
#pragma once

#include "RewriteCounts.h"

#include <torch/csrc/jit/ir/ir.h>

namespace rdna1::passes {

RewriteCounts LowerRecurrentLayers(const std::shared_ptr<torch::jit::Graph> &graph);

} // namespace rdna1::passes
