// The public C++ API (include/rdna1/Rewriter.h) over the tool's rewrite.
#include <rdna1/Rewriter.h>

#include "ReportJson.h"
#include "RewriteFile.h"
#include "Summary.h"
#include "ToolError.h"

#include <torch/csrc/jit/api/module.h>

#include <stdexcept>

namespace rdna1 {
namespace {

// The module-level checks of rewriteFile, for a module in memory.
void checkRewritable(const passes::ModuleReport &report, bool strict) {
  for (const auto &method : report.methods) {
    if (!method.dnnLibraryCalls.empty())
      throw std::runtime_error("cannot rewrite: unsupported node " +
                               method.dnnLibraryCalls.front() + " in " + method.owner + "." +
                               method.method + " would still reach cuDNN/MIOpen");
    if (strict && !method.remainingDnnUsers.empty())
      throw std::runtime_error("cannot rewrite: " + method.remainingDnnUsers.front() + " in " +
                               method.owner + "." + method.method +
                               " would still reach cuDNN/MIOpen (strict)");
  }
}

} // namespace

RewriteResult rewrite(torch::jit::Module &module, const RewriteOptions &options) {
  try {
    tool::RewriteOutcome outcome{passes::RewriteModule(module, options), std::nullopt, false};
    checkRewritable(outcome.report, options.strict);
    outcome.copiedInput = outcome.report.unchanged();
    return {tool::summaryLine(outcome, "the module", ""), tool::reportJson(outcome.report, "", ""),
            tool::remainingDnnWarnings(outcome.report)};
  } catch (const tool::ToolError &error) {
    throw std::runtime_error(error.what());
  }
}

RewriteResult rewriteFile(const std::string &input, const std::string &output,
                          const RewriteOptions &options) {
  try {
    tool::RewriteRequest request{input, output, false, options, {}};
    const tool::RewriteOutcome outcome = tool::rewriteFile(request);
    return {tool::summaryLine(outcome, input, tool::destinationOf(request)),
            tool::reportJson(outcome.report, input, output),
            tool::remainingDnnWarnings(outcome.report)};
  } catch (const tool::ToolError &error) {
    throw std::runtime_error(error.what());
  }
}

} // namespace rdna1
