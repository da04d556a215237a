// Saves a module to a new file with every write checked, so a full or failing
// disk becomes an error message instead of an abort inside libtorch's writer.
#pragma once

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/export.h>

#include <string>

namespace rdna1::tool {

// Creates `path` (which must not exist), writes `module` and its extra files,
// and flushes them to disk. Throws std::system_error naming the failed call;
// `path` may then hold a partial file, which the caller removes.
void writeModuleFile(const torch::jit::Module &module, const std::string &path,
                     const torch::jit::ExtraFilesMap &extra);

// Creates `path` as a byte-for-byte copy of `source`, with the same checks.
void copyFileBytes(const std::string &source, const std::string &path);

} // namespace rdna1::tool
