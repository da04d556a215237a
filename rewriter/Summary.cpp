#include "Summary.h"

namespace rdna1::tool {
namespace {

std::string plural(int count, const char *noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

} // namespace

std::string destinationOf(const RewriteRequest &request) {
  return request.dryRun ? " (dry run, nothing written)" : " -> " + request.output;
}

std::string summaryLine(const RewriteOutcome &outcome, const std::string &input,
                        const std::string &destination) {
  const passes::ModuleReport &report = outcome.report;
  if (outcome.copiedInput)
    return "nothing to rewrite in " + input + " (no convolution, or already rewritten)" +
           (destination.rfind(" -> ", 0) == 0 ? "; copied unchanged, byte for byte" + destination
                                              : destination);
  std::string line = "rewrote " + plural(report.convolutionLayers, "convolution layer");
  if (report.normLayers > 0)
    line += " and " + plural(report.normLayers, "norm layer");
  if (report.recurrentLayers > 0)
    line += " and " + plural(report.recurrentLayers, "recurrent layer");
  line += " (" + plural(report.convolutions() + report.norms() + report.recurrent(), "code site") +
          " in " + plural(report.methodsChanged(), "method") + ")";
  if (report.regions > 0)
    line += ", " + plural(report.regions, "host region");
  if (report.defaultBackend != "auto")
    line += ", default backend " + report.defaultBackend;
  return line + destination;
}

std::vector<std::string> remainingDnnWarnings(const passes::ModuleReport &report) {
  std::vector<std::string> warnings;
  for (const auto &method : report.methods)
    for (const std::string &kind : method.remainingDnnUsers)
      warnings.push_back(kind + " in " + method.owner + "." + method.method +
                         " is not rewritten and will still reach cuDNN/MIOpen on a GPU");
  return warnings;
}

} // namespace rdna1::tool
