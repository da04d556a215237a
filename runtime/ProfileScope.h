// A named scope for torch.profiler, so that the copies, waits and staging
// allocations of a crossing show apart from the op or autograd node running
// them. It costs a flag test while no profiler runs.
#pragma once

#include <ATen/record_function.h>

#include <vector>

#define RDNA1_PROFILE_SCOPE(name) RECORD_FUNCTION(name, std::vector<c10::IValue>())
