// Batch norm with running statistics when no gradient is recorded (inference):
// y = x * scale + shift per channel, one kernel. ATen's native kernel spends
// three launches per call on CUDA/HIP (the inverse deviation, a copy, the
// transform), cuDNN/MIOpen's one; launches are what small batches wait for.
// scale and shift are computed once per state of the parameters and running
// statistics (their identities, storages and version counters) and kept while
// the parameters live, so an optimizer step, load_state_dict or an in-place
// edit is seen on the next call. ATen's batch norm updates running statistics
// in training mode without bumping their version counters (autograd saved
// them at their current version, so a bump would fail the backward); the
// runtime's rdna1::batch_norm forgets what it kept for them instead
// (forgetKeptNorm), and every batch norm of a rewritten model, or of an eager
// one under rdna1.enable(), is that.
//
// Not seen: writes through `.data` (it has a version counter of its own), as
// for the host weight cache; clearKeptNorms() (rdna1.clear_param_cache())
// forgets every kept scale and shift.
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace rdna1 {

// The normalised input, or nullopt where the formulation does not apply: an
// op autograd or a tracer records, float16/bfloat16 (ATen computes those in
// float32), parameters of another dtype than the input, an empty input. The
// caller then runs ATen's batch norm.
std::optional<at::Tensor> evalBatchNorm(const at::Tensor &input,
                                        const c10::optional<at::Tensor> &weight,
                                        const c10::optional<at::Tensor> &bias,
                                        const at::Tensor &runningMean, const at::Tensor &runningVar,
                                        double eps);

// After a batch norm in training mode has updated its running statistics in place.
void forgetKeptNorm(const at::Tensor &runningVar);

void clearKeptNorms();

} // namespace rdna1
