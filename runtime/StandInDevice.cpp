#include "StandInDevice.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace rdna1 {
namespace {

std::atomic<bool> &flag() {
  static std::atomic<bool> on{[] {
    const char *value = std::getenv("RDNA1_STAND_IN_DEVICE");
    return value != nullptr && std::strcmp(value, "") != 0 && std::strcmp(value, "0") != 0;
  }()};
  return on;
}

} // namespace

bool standInDevice() {
  return flag().load(std::memory_order_relaxed);
}

void setStandInDevice(bool on) {
  flag().store(on);
}

bool needsMove(const at::Tensor &tensor, c10::Device target) {
  return tensor.device() != target || (target.is_cpu() && standInDevice());
}

} // namespace rdna1
