// What the CLI and Python say about a rewrite, written once for both.
#pragma once

#include "RewriteFile.h"

#include <string>
#include <vector>

namespace rdna1::tool {

// One line: layers as a user counts them (code sites in parentheses), host
// regions, the baked-in backend, and where the output went (destinationOf).
std::string summaryLine(const RewriteOutcome &outcome, const std::string &input,
                        const std::string &destination);

// " -> OUT", or " (dry run, nothing written)".
std::string destinationOf(const RewriteRequest &request);

// One line per node that still reaches cuDNN/MIOpen on a GPU (not rewritten).
std::vector<std::string> remainingDnnWarnings(const passes::ModuleReport &report);

} // namespace rdna1::tool
