#include "TrainingRegions.h"

#include "BatchedTransfer.h"
#include "Counters.h"

#include <rdna1/Backend.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace rdna1 {
namespace {

// 32 MB copies reach the bus's steady rate (4 MB ones are within 5% of 256 MB
// ones on the H200 box) and take a few milliseconds even over PCIe 3.0 x8.
constexpr int64_t kProbeBytes = int64_t{32} << 20;
constexpr int kRepeats = 3;

// The best of kRepeats copies of `source` into `target`, in GB/s.
double bestCopyGBps(const at::Tensor &target, const at::Tensor &source, c10::Device device) {
  double best = 0;
  for (int i = 0; i < kRepeats; ++i) {
    synchronizeCurrentStream(device);
    const auto start = std::chrono::steady_clock::now();
    target.copy_(source, /*non_blocking=*/true);
    synchronizeCurrentStream(device);
    const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
    best = std::max(best, static_cast<double>(kProbeBytes) / 1e9 / seconds.count());
  }
  return best;
}

double measureBus(c10::Device device) {
  const at::Tensor host =
      at::empty({kProbeBytes}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
  const at::Tensor onDevice =
      at::empty({kProbeBytes}, at::TensorOptions().dtype(at::kByte).device(device));
  host.fill_(1);
  return std::min(bestCopyGBps(onDevice, host, device), bestCopyGBps(host, onDevice, device));
}

// RDNA1_TRAIN_REGIONS: "conv" or "auto" forces the choice; unset or empty lets the bus decide.
std::optional<bool> forcedChoice() {
  const char *value = std::getenv("RDNA1_TRAIN_REGIONS");
  if (value == nullptr || *value == '\0')
    return std::nullopt;
  const std::string choice = value;
  TORCH_CHECK(choice == "conv" || choice == "auto", "rdna1: RDNA1_TRAIN_REGIONS='", choice,
              "' is not one of auto, conv");
  return choice == "conv";
}

} // namespace

double busBandwidth(c10::Device device) {
  if (device.is_cpu())
    return 0;
  static std::mutex mutex;
  static std::map<std::pair<int, int>, double> measured;
  const std::pair<int, int> key{static_cast<int>(device.type()),
                                device.has_index() ? device.index() : 0};
  std::lock_guard<std::mutex> lock(mutex);
  const auto found = measured.find(key);
  if (found != measured.end())
    return found->second;
  const c10::Device indexed(device.type(), static_cast<c10::DeviceIndex>(key.second));
  double gbps = 0; // a failed measurement (no memory for 32 MB on either side) counts as slow
  try {
    gbps = measureBus(indexed);
  } catch (const c10::Error &) {
  }
  return measured[key] = gbps;
}

bool trainWithConvRegions(std::optional<c10::Device> device) {
  bool conv = false;
  if (const auto forced = forcedChoice())
    conv = *forced;
  else if (device && !device->is_cpu() && backendFor(*device) == Backend::Host)
    conv = busBandwidth(*device) >= kConvRegionsMinBusGBps;
  (conv ? Counters::get().convRegionTrainings : Counters::get().autoRegionTrainings) += 1;
  return conv;
}

} // namespace rdna1
