// rdna1_tools::rewrite_file: the tool's rewrite, callable from Python
// (rdna1.rewrite) on machines without LLVM, where the CLI is not built.
#include "RewriteFile.h"
#include "ToolError.h"

#include <torch/library.h>

#include <string>

namespace rdna1::tool {
namespace {

passes::RewriteOptions parseOptions(const std::string &regions, const std::string &backend) {
  passes::RewriteOptions options;
  TORCH_CHECK(backend == "auto" || backend == "host" || backend == "device" || backend == "vendor",
              "backend must be 'auto', 'host', 'device' or 'vendor', got '", backend, "'");
  options.defaultBackend = backend;
  if (regions == "per-op")
    options.regions = false;
  else if (regions == "max")
    options.regionMode = passes::RegionMode::Max;
  else if (regions == "conv")
    options.regionMode = passes::RegionMode::ConvOnly;
  else
    TORCH_CHECK(regions == "auto", "regions must be 'auto', 'per-op', 'max' or 'conv', got '",
                regions, "'");
  return options;
}

// Returns a one-line summary; errors become Python RuntimeErrors with the tool's message.
std::string rewriteFileOp(const std::string &input, const std::string &output,
                          const std::string &regions, const std::string &backend) {
  try {
    const RewriteOutcome outcome =
        rewriteFile({input, output, false, parseOptions(regions, backend), {}});
    const passes::ModuleReport &report = outcome.report;
    if (outcome.copiedInput)
      return "nothing to rewrite in " + input +
             " (no convolution, or already rewritten); copied unchanged, byte for byte -> " +
             output;
    // Plain concatenation: iostreams crashed here when built against pip torch 2.11.
    return "rewrote " + std::to_string(report.convolutions()) + " convolutions and " +
           std::to_string(report.norms()) + " norms in " + std::to_string(report.methodsChanged()) +
           " methods, " + std::to_string(report.regions) + " host regions -> " + output;
  } catch (const ToolError &error) {
    TORCH_CHECK(false, error.what());
  }
}

} // namespace
} // namespace rdna1::tool

TORCH_LIBRARY(rdna1_tools, m) {
  m.def("rewrite_file(str input, str output, str regions='auto', str backend='auto') -> str",
        &rdna1::tool::rewriteFileOp);
}
