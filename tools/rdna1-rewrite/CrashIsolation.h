// Runs the rewrite in a child process. libtorch 1.13 segfaults or aborts on
// some malformed archives (found by tests/sanitizers' fuzzer); isolated, such a
// crash becomes the tool's one-line error and exit code, and nothing is left
// behind. Only the CLI isolates; in other processes reportPhase does nothing.
#pragma once

#include <functional>
#include <string>

namespace rdna1::tool {

// Names what the rewrite is doing ("loading", "rewriting", "writing",
// "verifying"), so that a crash can be described.
void reportPhase(const char *phase);

// Runs `rewrite` (which returns an exit code) in a child process and returns
// its exit code. If the child dies, prints one error line, removes its
// temporary files, and returns kExitBadInput for a crash while loading `input`
// or kExitInternal otherwise.
int runIsolated(const std::function<int()> &rewrite, const std::string &input,
                const std::string &output);

} // namespace rdna1::tool
