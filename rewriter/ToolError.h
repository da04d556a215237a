// Errors the tool reports as one line, each with its documented exit code.
#pragma once

#include <stdexcept>
#include <string>

namespace rdna1::tool {

enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,         // bad command line (reported by llvm::cl)
  kExitBadInput = 2,      // IN missing, unreadable or not a TorchScript model
  kExitCannotRewrite = 3, // a node would still reach cuDNN/MIOpen
  kExitCannotWrite = 4,   // OUT not writable, or the same file as IN
  kExitVerifyFailed = 5,  // --verify: the rewritten model differs, or could not run
  kExitInternal = 6,      // the tool itself crashed (a bug: please report it)
};

class ToolError : public std::runtime_error {
public:
  ToolError(ExitCode code, const std::string &message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

private:
  ExitCode code_;
};

} // namespace rdna1::tool
