// Loads a TorchScript archive, rewrites it, and writes the result atomically.
#pragma once

#include "RewriteModule.h"
#include "VerifyRewrite.h"

#include <optional>
#include <string>

namespace rdna1::tool {

struct RewriteRequest {
  std::string input;
  std::string output; // ignored with dryRun
  bool dryRun = false;
  passes::RewriteOptions options;
  VerifyOptions verify;
};

struct RewriteOutcome {
  passes::ModuleReport report;
  std::optional<VerifyResult> verified; // with --verify
  bool copiedInput = false;             // nothing to rewrite: OUT is a byte copy of IN
};

// Throws ToolError. Never modifies `input`; leaves no partial `output`, and no
// `output` at all when verification fails.
RewriteOutcome rewriteFile(const RewriteRequest &request);

} // namespace rdna1::tool
