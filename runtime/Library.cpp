// Declares the rdna1:: operators (schemas from OpSchemas.h); kernels register
// themselves in their own files.
#include "HipProbe.h"

#include <rdna1/OpSchemas.h>
#include <torch/library.h>

namespace rdna1 {
namespace {

std::string runtimeInfo() {
  return "rdna1 runtime " RDNA1_VERSION "; " + describeHipDevices();
}

} // namespace
} // namespace rdna1

TORCH_LIBRARY(rdna1, m) {
  m.def(rdna1::ops::kConvSchema);
  m.def(rdna1::ops::kConvPaddingSchema);
  m.def(rdna1::ops::kConvBackwardSchema);
  m.def(rdna1::ops::kBatchNormSchema);
  m.def(rdna1::ops::kInstanceNormSchema);
  m.def(rdna1::ops::kRuntimeInfoSchema, &rdna1::runtimeInfo);
}
