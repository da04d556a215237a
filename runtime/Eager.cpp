// The lifetime of the eager kernels' registration (rdna1/Eager.h): one pair
// of torch::Library objects (autograd key, backend key) created by enable()
// and destroyed by disable(). Destroying a Library deregisters its kernels,
// so the dispatcher recomputes exactly the table it had before.
#include "EagerKernels.h"

#include <rdna1/Eager.h>
#include <rdna1/OpSchemas.h>

#include <memory>
#include <mutex>

namespace rdna1 {
namespace {

struct Registration {
  std::unique_ptr<torch::Library> autogradKey;
  std::unique_ptr<torch::Library> backendKey;
  bool onCpu = false;
  bool setTheBackend = false;
};

std::mutex registrationMutex;
Registration current; // guarded by registrationMutex

std::unique_ptr<torch::Library> implLibrary(c10::DispatchKey key) {
  return std::make_unique<torch::Library>(torch::Library::IMPL, "aten", key, __FILE__, __LINE__);
}

Registration makeRegistration(bool onCpu) {
  Registration made;
  made.onCpu = onCpu;
  made.autogradKey =
      implLibrary(onCpu ? c10::DispatchKey::AutogradCPU : c10::DispatchKey::AutogradCUDA);
  made.backendKey = implLibrary(onCpu ? c10::DispatchKey::CPU : c10::DispatchKey::CUDA);
  eager::registerConvolutionAndNormKernels(*made.autogradKey, *made.backendKey);
  eager::registerRnnKernels(*made.autogradKey, *made.backendKey);
  return made;
}

// Registering the same key twice fails in recent torch, so a second enable()
// keeps the registration it finds unless it is for the other keys.
void enableAt(bool onCpu, std::optional<Backend> backend) {
  std::lock_guard<std::mutex> lock(registrationMutex);
  if (current.autogradKey && current.onCpu != onCpu)
    current = Registration{};
  if (!current.autogradKey)
    current = makeRegistration(onCpu);
  if (backend) {
    setBackend(backend);
    current.setTheBackend = true;
  }
}

void enableOp(const c10::optional<std::string> &backend, bool onCpu) {
  std::optional<Backend> parsed;
  if (backend) {
    parsed = parseBackend(*backend);
    TORCH_CHECK(parsed, "rdna1.enable: unknown backend '", *backend,
                "'; expected host, device, vendor or auto");
  }
  onCpu ? testing::enableOnCpu(parsed) : enable(parsed);
}

} // namespace

void enable(std::optional<Backend> backend) {
  enableAt(false, backend);
}

void testing::enableOnCpu(std::optional<Backend> backend) {
  enableAt(true, backend);
}

void disable() {
  std::lock_guard<std::mutex> lock(registrationMutex);
  if (current.setTheBackend)
    setBackend(std::nullopt);
  current = Registration{};
}

bool enabled() {
  std::lock_guard<std::mutex> lock(registrationMutex);
  return current.autogradKey != nullptr;
}

} // namespace rdna1

TORCH_LIBRARY_FRAGMENT(rdna1, m) {
  m.def(rdna1::ops::kEagerEnableSchema, &rdna1::enableOp);
  m.def(rdna1::ops::kEagerDisableSchema, [] { rdna1::disable(); });
  m.def(rdna1::ops::kEagerEnabledSchema, [] { return rdna1::enabled(); });
}
