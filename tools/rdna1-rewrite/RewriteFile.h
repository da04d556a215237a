// Loads a TorchScript archive, rewrites it, and writes the result atomically.
#pragma once

#include "RewriteModule.h"

#include <string>

namespace rdna1::tool {

struct RewriteRequest {
  std::string input;
  std::string output; // ignored with dryRun
  bool dryRun = false;
  passes::RewriteOptions options;
};

// Throws ToolError. Never modifies `input`; leaves no partial `output`.
passes::ModuleReport rewriteFile(const RewriteRequest &request);

} // namespace rdna1::tool
