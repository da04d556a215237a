// Process-wide counters of the runtime's work, so a benchmark can show where
// time and bytes go. Lock-free; read with snapshot().
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>

namespace rdna1 {

struct Counters {
  std::atomic<int64_t> toHostCopies{0}; // device-to-host DMA transfers
  std::atomic<int64_t> toHostBytes{0};
  std::atomic<int64_t> toDeviceCopies{0}; // host-to-device DMA transfers
  std::atomic<int64_t> toDeviceBytes{0};
  std::atomic<int64_t> paramCopies{0}; // parameters copied to the host (cache misses)
  std::atomic<int64_t> paramBytes{0};
  std::atomic<int64_t> paramHits{0}; // parameters served from the host cache
  std::atomic<int64_t> hostConvolutions{0};
  std::atomic<int64_t> hostConvolutionNanos{0};
  std::atomic<int64_t> nativeConvolutions{0}; // on the device, through the native convolution
  std::atomic<int64_t> vendorConvolutions{0}; // through ATen's convolution (backend vendor)
  std::atomic<int64_t> evalNorms{0};          // inference batch norms as one multiply-add
  std::atomic<int64_t> evalNormScales{0};     // their scale and shift computed (not kept ones)
  // Training-mode forwards of files with a copy per bus (TrainingRegions.h), by the copy taken.
  std::atomic<int64_t> convRegionTrainings{0};
  std::atomic<int64_t> autoRegionTrainings{0};

  // One transfer of `bytes` across the bus, each way.
  void countToHost(int64_t bytes);
  void countToDevice(int64_t bytes);

  static Counters &get();
  std::map<std::string, int64_t> snapshot() const;
  void reset();
};

} // namespace rdna1
