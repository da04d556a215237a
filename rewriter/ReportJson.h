// The rewrite report as JSON (--report, rdna1.rewrite(...).report): what was
// rewritten, by class, method and node kind. Its fields are documented in
// docs/report.md; "version" changes when they do.
#pragma once

#include "RewriteModule.h"

#include <string>

namespace rdna1::tool {

inline constexpr int kReportVersion = 2;

// Built as a string (no iostreams: they crash in builds against pip torch 2.11).
std::string reportJson(const passes::ModuleReport &report, const std::string &input,
                       const std::string &output);

} // namespace rdna1::tool
