#include "Counters.h"

namespace rdna1 {

Counters &Counters::get() {
  static Counters counters;
  return counters;
}

void Counters::countToHost(int64_t bytes) {
  toHostCopies += 1;
  toHostBytes += bytes;
}

void Counters::countToDevice(int64_t bytes) {
  toDeviceCopies += 1;
  toDeviceBytes += bytes;
}

std::map<std::string, int64_t> Counters::snapshot() const {
  return {{"to_host_copies", toHostCopies.load()},
          {"to_host_bytes", toHostBytes.load()},
          {"to_device_copies", toDeviceCopies.load()},
          {"to_device_bytes", toDeviceBytes.load()},
          {"param_copies", paramCopies.load()},
          {"param_bytes", paramBytes.load()},
          {"param_hits", paramHits.load()},
          {"host_convolutions", hostConvolutions.load()},
          {"host_convolution_ns", hostConvolutionNanos.load()},
          {"native_convolutions", nativeConvolutions.load()},
          {"vendor_convolutions", vendorConvolutions.load()},
          {"eval_norms", evalNorms.load()},
          {"eval_norm_scales", evalNormScales.load()},
          {"trainings_with_conv_regions", convRegionTrainings.load()},
          {"trainings_with_auto_regions", autoRegionTrainings.load()}};
}

void Counters::reset() {
  for (auto *counter : {&toHostCopies, &toHostBytes, &toDeviceCopies, &toDeviceBytes, &paramCopies,
                        &paramBytes, &paramHits, &hostConvolutions, &hostConvolutionNanos,
                        &nativeConvolutions, &vendorConvolutions, &evalNorms, &evalNormScales,
                        &convRegionTrainings, &autoRegionTrainings})
    counter->store(0);
}

} // namespace rdna1
