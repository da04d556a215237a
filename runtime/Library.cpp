// Declares the rdna1:: operators (schemas from OpSchemas.h); kernels register
// themselves in their own files.
#include "Counters.h"
#include "HipProbe.h"
#include "HostParamCache.h"

#include <rdna1/OpSchemas.h>
#include <torch/library.h>

namespace rdna1 {
namespace {

c10::Dict<std::string, int64_t> counters() {
  c10::Dict<std::string, int64_t> out;
  for (const auto &[name, value] : Counters::get().snapshot())
    out.insert(name, value);
  return out;
}

void resetCounters() {
  Counters::get().reset();
}

void clearParamCache() {
  HostParamCache::get().clear();
}

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
  m.def(rdna1::ops::kToHostSchema);
  m.def(rdna1::ops::kToDeviceSchema);
  m.def(rdna1::ops::kHostParamsSchema);
  m.def(rdna1::ops::kHostParamSchema);
  m.def(rdna1::ops::kCopyBackSchema);
  m.def(rdna1::ops::kClearParamCacheSchema, &rdna1::clearParamCache);
  m.def(rdna1::ops::kCountersSchema, &rdna1::counters);
  m.def(rdna1::ops::kResetCountersSchema, &rdna1::resetCounters);
  m.def(rdna1::ops::kRuntimeInfoSchema, &rdna1::runtimeInfo);
}
