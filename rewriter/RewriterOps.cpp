// rdna1_tools::rewrite_file: the tool's rewrite, callable from Python
// (rdna1.rewrite) on machines without LLVM, where the CLI is not built; and
// rdna1_tools::remaining_dnn_users, the passes' list of ops that still reach
// cuDNN/MIOpen, which the export rewrite shares.
#include "ReportJson.h"
#include "RewriteFile.h"
#include "Summary.h"
#include "ToolError.h"

#include "FindDnnLibraryCalls.h"

#include <torch/library.h>

#include <string>

namespace rdna1::tool {
namespace {

// The summary line, the report as JSON and one warning per node that still
// reaches cuDNN/MIOpen. Errors become Python RuntimeErrors with the tool's message behind
// "[rdna1 exit N] ", N its exit code: rdna1.rewrite raises them as rdna1.RewriteError.
std::tuple<std::string, std::string, std::vector<std::string>>
rewriteFileOp(const std::string &input, const std::string &output, const std::string &regions,
              const std::string &backend, bool dryRun, bool strict) {
  try {
    RewriteRequest request{input, output, dryRun, parseOptions(regions, backend, strict), {}};
    const RewriteOutcome outcome = rewriteFile(request);
    return {summaryLine(outcome, input, destinationOf(request)),
            reportJson(outcome.report, input, dryRun ? std::string() : output),
            remainingDnnWarnings(outcome.report)};
  } catch (const ToolError &error) {
    TORCH_CHECK(false, "[rdna1 exit ", static_cast<int>(error.code()), "] ", error.what());
  }
}

} // namespace
} // namespace rdna1::tool

TORCH_LIBRARY(rdna1_tools, m) {
  m.def("rewrite_file(str input, str output, str regions='auto', str backend='auto', "
        "bool dry_run=False, bool strict=False) -> (str, str, str[])",
        &rdna1::tool::rewriteFileOp);
  m.def("remaining_dnn_users() -> str[]", [] { return rdna1::passes::RemainingDnnUserKinds(); });
}
