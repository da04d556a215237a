#include "CrashIsolation.h"

#include "ToolError.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace rdna1::tool {
namespace {

int phaseFd = -1; // the child's end of the phase pipe; -1 when not isolated

std::string readAll(int fd) {
  std::string text;
  char buffer[256];
  ssize_t n = 0;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0)
      text.append(buffer, static_cast<size_t>(n));
  return text;
}

std::string lastPhase(const std::string &phases) {
  const std::string trimmed = phases.substr(0, phases.find_last_not_of('\n') + 1);
  return trimmed.substr(trimmed.find_last_of('\n') + 1);
}

// The temporary files RewriteFile names after the writing process.
void removeTemporaries(const std::string &output, pid_t child) {
  std::error_code ignored;
  const std::string suffix = ".tmp-" + std::to_string(child);
  if (!output.empty())
    std::filesystem::remove(output + suffix, ignored);
  std::filesystem::remove(
      std::filesystem::temp_directory_path() / ("rdna1-verify" + suffix + ".pt"), ignored);
}

[[noreturn]] void runChild(const std::function<int()> &rewrite, int writeFd) {
  phaseFd = writeFd;
  // No core file left behind, and no multi-line "terminate called..." report.
  const rlimit noCore{0, 0};
  ::setrlimit(RLIMIT_CORE, &noCore);
  std::set_terminate([] { std::abort(); });
  int code = kExitInternal;
  try {
    code = rewrite();
  } catch (...) {
    std::cerr << "rdna1-rewrite: error: internal error: unexpected exception\n";
  }
  std::cout.flush();
  std::cerr.flush();
  // Skips static destructors: the parent process owns the exit.
  ::_exit(code);
}

} // namespace

void reportPhase(const char *phase) {
  if (phaseFd < 0)
    return;
  const std::string line = std::string(phase) + "\n";
  [[maybe_unused]] const ssize_t written = ::write(phaseFd, line.data(), line.size());
}

int runIsolated(const std::function<int()> &rewrite, const std::string &input,
                const std::string &output) {
  int fds[2];
  if (::pipe(fds) != 0)
    return rewrite(); // cannot isolate: run unprotected rather than not at all
  std::cout.flush();
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return rewrite();
  }
  if (child == 0) {
    ::close(fds[0]);
    runChild(rewrite, fds[1]);
  }
  ::close(fds[1]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  const std::string phase = lastPhase(readAll(fds[0]));
  ::close(fds[0]);
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  removeTemporaries(output, child);
  const char *signal = WIFSIGNALED(status) ? ::strsignal(WTERMSIG(status)) : "stopped";
  if (phase == "loading" || phase.empty()) {
    std::cerr << "rdna1-rewrite: error: cannot load '" << input
              << "': libtorch crashed reading it (" << signal << "); the archive is malformed\n";
    return kExitBadInput;
  }
  std::cerr << "rdna1-rewrite: error: internal error: crashed while " << phase << " (" << signal
            << "); nothing written\n";
  return kExitInternal;
}

} // namespace rdna1::tool
