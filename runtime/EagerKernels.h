// The kernels that rdna1::enable() registers for aten:: operators (Eager.cpp
// owns their registration's lifetime). Each registers itself into a library
// for an autograd key and one for the matching backend key.
#pragma once

#include <torch/library.h>

namespace rdna1::eager {

// Convolutions (to rdna1::conv) and batch norm (to rdna1::batch_norm).
void registerConvolutionAndNormKernels(torch::Library &autogradKey, torch::Library &backendKey);

// LSTM, GRU and plain RNNs through ATen's native ops, never cuDNN/MIOpen.
void registerRnnKernels(torch::Library &autogradKey, torch::Library &backendKey);

} // namespace rdna1::eager
