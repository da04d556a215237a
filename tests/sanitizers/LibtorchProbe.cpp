#include "LibtorchProbe.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/script.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fcntl.h>
#include <sanitizer/allocator_interface.h>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace rdna1::testing {
namespace {

size_t allocationLimit = 0;

// Runs after every allocation of the child; the memory is not touched yet.
void exitIfTooLarge(const volatile void *, size_t size) {
  if (size > allocationLimit)
    ::_exit(3);
}

void ignoreFree(const volatile void *) {} // the sanitizer takes no hook pair without it

[[noreturn]] void loadInChild(const std::string &path, unsigned seconds, long allocationLimitMiB) {
  // Die of the signal itself: no sanitizer report, no libFuzzer crash
  // artifact, no core file; the parent only needs to know.
  for (int signal : {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE})
    std::signal(signal, SIG_DFL);
  const rlimit noCore{0, 0};
  ::setrlimit(RLIMIT_CORE, &noCore);
  const int devNull = ::open("/dev/null", O_WRONLY);
  ::dup2(devNull, STDOUT_FILENO);
  ::dup2(devNull, STDERR_FILENO);
  ::alarm(seconds);
  allocationLimit = static_cast<size_t>(allocationLimitMiB) << 20;
  if (!__sanitizer_install_malloc_and_free_hooks(exitIfTooLarge, ignoreFree))
    ::_exit(4);
  try {
    // As rdna1::tool::rewriteFile loads: extra files too, which libtorch reads whole.
    torch::jit::ExtraFilesMap extra;
    for (const std::string &record : caffe2::serialize::PyTorchStreamReader(path).getAllRecords())
      if (record.rfind("extra/", 0) == 0)
        extra.emplace(record.substr(6), "");
    torch::jit::load(path, torch::kCPU, extra);
  } catch (const std::exception &error) {
    (void)error.what();
  } catch (...) {
  }
  ::_exit(0);
}

} // namespace

bool libtorchSurvivesLoading(const std::string &path, unsigned seconds, long allocationLimitMiB) {
  const pid_t child = ::fork();
  if (child < 0) {
    std::perror("rewrite_fuzzer: fork");
    std::abort();
  }
  if (child == 0)
    loadInChild(path, seconds, allocationLimitMiB);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0)
    if (errno != EINTR) {
      std::perror("rewrite_fuzzer: waitpid");
      std::abort();
    }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

} // namespace rdna1::testing
