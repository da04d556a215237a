#include <rdna1/Backend.h>

#include <rdna1/DeviceProbe.h>

#include "StandInDevice.h"

#include <c10/util/Exception.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <mutex>

namespace rdna1 {
namespace {

constexpr int kUnset = -1;
std::atomic<int> overrideChoice{kUnset};
// The default of the model that this thread runs: each rewritten model sets it at the top of its
// methods (rdna1::set_default_backend), so models with different defaults, or none ("auto"), each
// run on their own, in sequence or on threads side by side.
thread_local int modelDefault = kUnset;

int environmentChoice() {
  static const int choice = [] {
    const char *value = std::getenv("RDNA1_BACKEND");
    if (value == nullptr || *value == '\0')
      return kUnset;
    const auto parsed = parseBackend(value);
    TORCH_CHECK(parsed, "rdna1: RDNA1_BACKEND='", value,
                "' is not one of host, device, vendor, auto");
    return static_cast<int>(*parsed);
  }();
  return choice;
}

// Auto on an accelerator, decided once per device index.
Backend resolveAutoOnAccelerator(c10::Device device) {
  static std::mutex mutex;
  static std::array<int, 64> decided = [] {
    std::array<int, 64> none{};
    none.fill(kUnset);
    return none;
  }();
  const size_t index = device.has_index() ? static_cast<size_t>(device.index()) : 0;
  std::lock_guard<std::mutex> lock(mutex);
  if (index < decided.size() && decided[index] != kUnset)
    return static_cast<Backend>(decided[index]);
  Backend choice = Backend::Vendor;
  if (device.is_cuda() && isAmdGpuMachine())
    choice = probeDevice(static_cast<int>(index)).deviceWorks ? Backend::Device : Backend::Host;
  if (index < decided.size())
    decided[index] = static_cast<int>(choice);
  return choice;
}

} // namespace

std::optional<Backend> parseBackend(const std::string &name) {
  return valueNamed(kBackendNames, name);
}

const char *backendName(Backend backend) {
  return nameOf(kBackendNames, backend);
}

void setBackend(std::optional<Backend> backend) {
  overrideChoice.store(backend ? static_cast<int>(*backend) : kUnset);
}

void setModelDefaultBackend(Backend backend) {
  modelDefault = static_cast<int>(backend);
}

Backend requestedBackend() {
  for (int choice : {overrideChoice.load(), environmentChoice(), modelDefault})
    if (choice != kUnset)
      return static_cast<Backend>(choice);
  return Backend::Auto;
}

Backend backendFor(c10::Device device) {
  if (device.is_cpu()) {
    // A model's default is about GPUs: on the CPU only the user's choice (tests) counts, unless
    // the stand-in device makes CPU tensors stand for a GPU's.
    Backend choice = Backend::Auto;
    for (int explicitChoice : {overrideChoice.load(), environmentChoice()})
      if (explicitChoice != kUnset && choice == Backend::Auto)
        choice = static_cast<Backend>(explicitChoice);
    if (standInDevice())
      choice = requestedBackend();
    return choice == Backend::Auto ? Backend::Host : choice;
  }
  const Backend requested = requestedBackend();
  return requested == Backend::Auto ? resolveAutoOnAccelerator(device) : requested;
}

} // namespace rdna1
