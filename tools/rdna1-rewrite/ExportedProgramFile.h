// torch.export programs (.pt2) given to rdna1-rewrite: told from TorchScript archives by their
// records, not their suffix, and rewritten by the rdna1 Python package's export pass
// (python/rdna1/export.py), run by the Python this build was configured with.
#pragma once

#include <string>

namespace rdna1::tool {

// Whether `path` is a zip archive with the records torch.export.save (or AOTInductor's
// packager) writes: `<name>/archive_format`. Reads only the zip's central directory; anything
// unreadable is not a program (the TorchScript path then says what is wrong with it).
bool isExportedProgramFile(const std::string &path);

// Runs the export pass on argv's rewrite (same options, output and exit codes), replacing this
// process; returns only with an error already reported (exit 2 where this build's torch has no
// torch.export, 6 where the Python cannot be run).
int rewriteExportedProgram(int argc, char **argv);

} // namespace rdna1::tool
