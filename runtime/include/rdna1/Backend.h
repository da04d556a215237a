// Where rdna1::conv computes. Chosen per process at run time, never in the
// graph, so one rewritten file runs the fastest safe way on every machine:
//   host    copy operands to the CPU, convolve there (oneDNN), copy back;
//   device  ATen's own device kernels through rdna1's native convolution
//           (im2col + matrix products): never cuDNN/MIOpen, forward or backward;
//           region boundaries and the host weight cache move nothing;
//   vendor  the original call (cuDNN/MIOpen allowed), for healthy GPUs;
//   auto    per device: the CPU -> host; an AMD GPU -> device if the crash-safe
//           probe says its native kernels work, else host; other GPUs -> vendor.
// The requested backend is, first found: setBackend(), the RDNA1_BACKEND
// environment variable, the default a model baked in (rdna1-rewrite --backend),
// auto. On the CPU only setBackend() and RDNA1_BACKEND count (the host path is
// the CPU's own; tests force the others there). Public: the CLI and Python
// bindings use it too.
#pragma once

#include <rdna1/NamedValues.h>

#include <c10/core/Device.h>

#include <optional>
#include <string>

namespace rdna1 {

enum class Backend { Host, Device, Vendor, Auto };

// Every backend by the name users type, with what it does: the one table that the runtime, the
// rewrite's options (RewriteOptions.h) and the tools' help read.
inline constexpr NamedValue<Backend> kBackendNames[] = {
    {Backend::Auto, "auto",
     "per device: host on the CPU, device on AMD GPUs whose native kernels pass the probe, "
     "else host; vendor on other GPUs"},
    {Backend::Host, "host", "convolve on the CPU, operands copied across the bus"},
    {Backend::Device, "device", "the GPU's own ATen kernels, never cuDNN/MIOpen"},
    {Backend::Vendor, "vendor", "the original call (cuDNN/MIOpen allowed), for healthy GPUs"}};

std::optional<Backend> parseBackend(const std::string &name);
const char *backendName(Backend backend);

// Overrides every other source until cleared with std::nullopt.
void setBackend(std::optional<Backend> backend);
// The default of a rewritten model (its rdna1::set_default_backend call).
void setModelDefaultBackend(Backend backend);
Backend requestedBackend();

// The backend for tensors on `device`, auto resolved; may run the device probe
// (DeviceProbe.h) the first time an AMD GPU is seen.
Backend backendFor(c10::Device device);

} // namespace rdna1
