#include <rdna1/Backend.h>

#include <rdna1/DeviceProbe.h>

#include <c10/util/Exception.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <mutex>

namespace rdna1 {
namespace {

constexpr int kUnset = -1;
std::atomic<int> overrideChoice{kUnset};
std::atomic<int> modelDefault{kUnset};

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
  if (name == "host")
    return Backend::Host;
  if (name == "device")
    return Backend::Device;
  if (name == "vendor")
    return Backend::Vendor;
  if (name == "auto")
    return Backend::Auto;
  return std::nullopt;
}

const char *backendName(Backend backend) {
  switch (backend) {
  case Backend::Host:
    return "host";
  case Backend::Device:
    return "device";
  case Backend::Vendor:
    return "vendor";
  case Backend::Auto:
    break;
  }
  return "auto";
}

void setBackend(std::optional<Backend> backend) {
  overrideChoice.store(backend ? static_cast<int>(*backend) : kUnset);
}

void setModelDefaultBackend(Backend backend) {
  modelDefault.store(static_cast<int>(backend));
}

Backend requestedBackend() {
  for (int choice : {overrideChoice.load(), environmentChoice(), modelDefault.load()})
    if (choice != kUnset)
      return static_cast<Backend>(choice);
  return Backend::Auto;
}

Backend backendFor(c10::Device device) {
  if (device.is_cpu()) {
    // A model's default is about GPUs; on the CPU only an explicit choice (tests) counts.
    for (int choice : {overrideChoice.load(), environmentChoice()})
      if (choice != kUnset && choice != static_cast<int>(Backend::Auto))
        return static_cast<Backend>(choice);
    return Backend::Host;
  }
  const Backend requested = requestedBackend();
  return requested == Backend::Auto ? resolveAutoOnAccelerator(device) : requested;
}

} // namespace rdna1
