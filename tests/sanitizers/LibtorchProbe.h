// Whether libtorch itself survives loading a file. Debian's libtorch 1.13
// crashes on some malformed TorchScript archives, in torch::jit::load alone (as
// Python's torch.jit.load does): a SEGV in ScriptTypeParser::parseClassConstant
// on a class-body assignment without a type annotation (it reads the absent
// annotation), and std::terminate from ErrorReport::what(), which is noexcept
// but unpickles the .debug_pkl records and throws when they are malformed.
// It also trusts the sizes an archive claims (zip headers, pickled string
// lengths): a small file can make it allocate gigabytes. The fuzz target asks
// this first, so that its run tests what our code adds to the load rather
// than stopping at these known libtorch weaknesses.
#pragma once

#include <string>

namespace rdna1::testing {

// Loads `path` as rdna1::tool::rewriteFile does, but with libtorch alone and in
// a child process, and formats any error it throws (what() is where the
// .debug_pkl crash happens). False if the child died, asked for a block of more
// than `allocationLimitMiB`, or did not finish within `seconds`.
bool libtorchSurvivesLoading(const std::string &path, unsigned seconds, long allocationLimitMiB);

} // namespace rdna1::testing
