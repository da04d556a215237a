// Eager mode: ordinary PyTorch programs (no rewrite, no TorchScript) keep their
// convolutions, norms and RNNs away from cuDNN/MIOpen while it is on.
//
//   rdna1::enable();    // every convolution on a GPU now runs through rdna1's kernels
//   ...                 // train or infer as usual
//   rdna1::disable();   // the dispatcher's previous kernels, exactly
//
// enable() registers kernels for aten::convolution, aten::_convolution (both
// overloads), aten::batch_norm (which instance norm calls) and aten::lstm, gru,
// rnn_tanh and rnn_relu (both overloads) at the AutogradCUDA key (with
// autograd of their own, so no backward reaches convolution_backward's
// cuDNN/MIOpen path) and at the CUDA key (inference mode and calls below
// autograd). ROCm's PyTorch dispatches HIP tensors through the same keys. CPU
// tensors never reach them. Convolutions go to rdna1::conv, so they run where
// the runtime's backend puts them (rdna1/Backend.h): the native kernels on the
// GPU, the host, or the original kernels on a healthy GPU (vendor). Norms and
// RNNs always run ATen's native kernels, as in rewritten models.
#pragma once

#include <rdna1/Backend.h>

#include <optional>

namespace rdna1 {

// Registers the eager kernels; idempotent. With `backend`, also sets the
// process's backend override (setBackend) until disable().
void enable(std::optional<Backend> backend = std::nullopt);

// Removes the eager kernels (the dispatcher then serves what it served before
// enable()) and clears the backend override that enable() set, if any.
void disable();

bool enabled();

namespace testing {
// enable() at the AutogradCPU and CPU keys instead: machines without a GPU can
// exercise the same kernels on CPU tensors. The runtime's own CPU
// convolutions (the host backend) pass through to ATen's.
void enableOnCpu(std::optional<Backend> backend = std::nullopt);
} // namespace testing

} // namespace rdna1
