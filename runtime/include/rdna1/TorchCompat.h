#pragma once
// What differs between the torches rdna1 builds against: Debian's 1.13 and pip's 2.x. Version
// checks live here, not in the passes and the runtime.
#include <rdna1/TorchVersion.h>
#include <torch/version.h>

namespace rdna1::compat {

// The torch this build is for, as its Python names it ("1.13.0a0", "2.11.0+cu130"), written by
// CMake (cmake/SelectTorch.cmake) into the build's include/rdna1/TorchVersion.h.
inline constexpr const char *kTorchVersion = RDNA1_TORCH_VERSION;

// torch.jit.save has written a "byteorder" record since torch 2. A torch before 2 loads many such
// files, but not those that call an operator it lacks.
inline constexpr const char *kTorch2ArchiveRecord = "byteorder";
inline constexpr bool kReadsEveryTorch2Archive = TORCH_VERSION_MAJOR >= 2;

// torch.export programs (.pt2) need torch 2; a build for an older torch refuses them in one line.
inline constexpr bool kHasTorchExport = TORCH_VERSION_MAJOR >= 2;
// torch::inductor::AOTIModelPackageLoader (torch/csrc/inductor/aoti_package/) since torch 2.6.
#define RDNA1_HAS_AOTI_PACKAGE_LOADER                                                              \
  (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 6))

} // namespace rdna1::compat
