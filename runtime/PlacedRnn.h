// The native layer stacks of NativeRnn.h placed by the runtime's backend
// (rdna1/Backend.h), for rewritten models' rdna1::lstm family and for eager
// aten::lstm family alike: device and vendor run on the tensors' device (there
// is no vendor RNN to fall back to that avoids MIOpen); host moves the input,
// states and weights to the host in one batched crossing, runs there and moves
// the results back (half precision computes in float32 there).
#pragma once

#include "NativeRnn.h"

namespace rdna1 {

PaddedRnnRunner placedRnnPadded;
PackedRnnRunner placedRnnPacked;

} // namespace rdna1
