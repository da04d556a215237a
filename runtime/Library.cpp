// Declares the rdna1:: operators (schemas from OpSchemas.h); kernels register
// themselves in their own files.
#include "Counters.h"
#include "EvalBatchNorm.h"
#include "HipProbe.h"
#include "HostParamCache.h"
#include "StandInDevice.h"
#include "TrainingRegions.h"
#include <rdna1/DeviceProbe.h>

#include <rdna1/Backend.h>
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
  clearKeptNorms();
}

Backend backendNamed(const std::string &name) {
  const auto backend = parseBackend(name);
  TORCH_CHECK(backend, "rdna1: unknown backend '", name,
              "'; expected host, device, vendor or auto");
  return *backend;
}

void setDefaultBackend(const std::string &name) {
  setModelDefaultBackend(backendNamed(name));
}

void setBackendOverride(const c10::optional<std::string> &name) {
  setBackend(name ? std::optional<Backend>(backendNamed(*name)) : std::nullopt);
}

std::string backendForDevice(c10::Device device) {
  return backendName(backendFor(device));
}

bool trainWithConvRegionsOn(const c10::optional<c10::Device> &device) {
  return trainWithConvRegions(device ? std::optional<c10::Device>(*device) : std::nullopt);
}

std::string runtimeInfo() {
  return std::string("rdna1 runtime " RDNA1_VERSION "; ") + describeHipDevices() +
         (standInDevice() ? "; stand-in device on" : "");
}

} // namespace
} // namespace rdna1

TORCH_LIBRARY(rdna1, m) {
  m.def(rdna1::ops::kConvSchema);
  m.def(rdna1::ops::kConvPaddingSchema);
  m.def(rdna1::ops::kConvBackwardSchema);
  m.def(rdna1::ops::kBatchNormSchema);
  m.def(rdna1::ops::kInstanceNormSchema);
  m.def(rdna1::ops::kLstmSchema);
  m.def(rdna1::ops::kLstmDataSchema);
  m.def(rdna1::ops::kGruSchema);
  m.def(rdna1::ops::kGruDataSchema);
  m.def(rdna1::ops::kRnnTanhSchema);
  m.def(rdna1::ops::kRnnTanhDataSchema);
  m.def(rdna1::ops::kRnnReluSchema);
  m.def(rdna1::ops::kRnnReluDataSchema);
  m.def(rdna1::ops::kToHostSchema);
  m.def(rdna1::ops::kToDeviceSchema);
  m.def(rdna1::ops::kHostParamsSchema);
  m.def(rdna1::ops::kHostParamSchema);
  m.def(torch::schema(rdna1::ops::kCopyBackSchema, c10::AliasAnalysisKind::CONSERVATIVE));
  m.def(rdna1::ops::kClearParamCacheSchema, &rdna1::clearParamCache);
  m.def(rdna1::ops::kSetStandInDeviceSchema, &rdna1::setStandInDevice);
  m.def(torch::schema(rdna1::ops::kSetDefaultBackendSchema, c10::AliasAnalysisKind::CONSERVATIVE),
        &rdna1::setDefaultBackend);
  m.def(rdna1::ops::kSetBackendSchema, &rdna1::setBackendOverride);
  m.def(rdna1::ops::kBackendForSchema, &rdna1::backendForDevice);
  m.def(rdna1::ops::kProbeSchema, &rdna1::describeProbe);
  m.def(
      torch::schema(rdna1::ops::kTrainWithConvRegionsSchema, c10::AliasAnalysisKind::CONSERVATIVE),
      &rdna1::trainWithConvRegionsOn);
  m.def(rdna1::ops::kBusBandwidthSchema, &rdna1::busBandwidth);
  m.def(rdna1::ops::kCountersSchema, &rdna1::counters);
  m.def(rdna1::ops::kResetCountersSchema, &rdna1::resetCounters);
  m.def(rdna1::ops::kRuntimeInfoSchema, &rdna1::runtimeInfo);
}
