// The --report file: what was rewritten, by class, method and node kind.
#pragma once

#include "RewriteModule.h"

#include <ostream>
#include <string>

namespace rdna1::tool {

void writeReportJson(std::ostream &out, const passes::ModuleReport &report,
                     const std::string &input, const std::string &output);

} // namespace rdna1::tool
