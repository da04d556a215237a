// LSTM, GRU and plain RNN stacks through ATen's native ops, never cuDNN/MIOpen:
// ATen's own aten::lstm & co. pick cuDNN/MIOpen from the process-global flag,
// and MIOpen's RNNs fail on RDNA1. Shared by the eager kernels (EagerRnn.cpp)
// and the rdna1::lstm family of rewritten models (RnnKernels.cpp).
//
// The layer loop is ATen's (aten/src/ATen/native/RNN.cpp): the input's part of
// the gates in one matrix product per layer, then a cell per time step;
// dropout between layers in training, through at::dropout as ATen does, so the
// same seed draws the same masks. On CUDA/HIP devices the LSTM and GRU cells
// are ATen's fused kernels (_thnn_fused_*_cell), elsewhere plain ops. Every
// step is a differentiable ATen op, so autograd derives the backward.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace rdna1 {

enum class RnnCell { Lstm, Gru, Tanh, Relu };

// The arguments aten::lstm and friends share, after the tensors.
struct RnnArgs {
  RnnCell cell;
  bool hasBiases;
  int64_t layers;
  double dropout;
  bool train;
  bool bidirectional;
};

struct RnnResult {
  at::Tensor output;
  // {h} for GRU and plain RNNs, {h, c} for LSTMs; each [layers * directions, batch, features].
  std::vector<at::Tensor> finals;
};

// A layer stack over padded input: [time, batch, features], or [batch, time,
// features] with batchFirst. `hx` as `finals`; `params` in nn.RNNBase's order
// (_flat_weights).
using PaddedRnnRunner = RnnResult(const RnnArgs &args, const at::Tensor &input,
                                  const std::vector<at::Tensor> &hx, at::TensorList params,
                                  bool batchFirst);

// A layer stack over packed input (PackedSequence's data and batch_sizes).
using PackedRnnRunner = RnnResult(const RnnArgs &args, const at::Tensor &data,
                                  const at::Tensor &batchSizes, const std::vector<at::Tensor> &hx,
                                  at::TensorList params);

// On the tensors' device.
PaddedRnnRunner nativeRnnPadded;
PackedRnnRunner nativeRnnPacked;

} // namespace rdna1
