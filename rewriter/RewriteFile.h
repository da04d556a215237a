// Loads a TorchScript archive, rewrites it, and writes the result atomically.
#pragma once

#include "RewriteModule.h"
#include "VerifyRewrite.h"

#include <rdna1/Rewriter.h>

#include <functional>
#include <optional>
#include <string>

namespace rdna1::tool {

// The options from the names users type (parseRewriteOptions); throws
// ToolError(kExitUsage) naming what it expects.
RewriteOptions parseOptions(const std::string &regions, const std::string &backend, bool strict);

struct RewriteRequest {
  std::string input;
  std::string output; // ignored with dryRun
  bool dryRun = false;
  RewriteOptions options;
  VerifyOptions verify;
  bool emitIr = false; // fill RewriteOutcome::ir
  // Called as the rewrite enters each phase ("loading", "rewriting", "writing",
  // "verifying"); the CLI's crash isolation names the phase a crash happened in.
  std::function<void(const char *)> onPhase = [](const char *) {};
};

struct RewriteOutcome {
  passes::ModuleReport report;
  std::optional<VerifyResult> verified; // with --verify
  bool copiedInput = false;             // nothing to rewrite: OUT is a byte copy of IN
  std::string ir; // with emitIr: the rewritten graph of each of the module's own methods
};

// Throws ToolError. Never modifies `input`; leaves no partial `output`, and no
// `output` at all when verification fails.
RewriteOutcome rewriteFile(const RewriteRequest &request);

} // namespace rdna1::tool
