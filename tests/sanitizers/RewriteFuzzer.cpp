// libFuzzer target over the CLI's load-and-rewrite path: rewriteFile as
// `rdna1-rewrite --dry-run IN` calls it, with IN holding the fuzzer's bytes.
// Its contract: any input ends in a result or a ToolError, never a crash, a
// sanitizer report, or another exception (which the CLI would misreport).
// Inputs that crash libtorch's own loader are skipped (LibtorchProbe.h), unless
// RDNA1_FUZZ_PROBE=0: then the run finds libtorch's crashes too.
#include "LibtorchProbe.h"
#include "RewriteFile.h"
#include "ToolError.h"

#include <ATen/Parallel.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace {

// One file per process (libFuzzer's -fork and -jobs run several at once), in
// TMPDIR: a crash leaves it behind.
const std::string &inputPath() {
  static const std::string path = (std::filesystem::temp_directory_path() /
                                   ("rdna1-fuzz-" + std::to_string(::getpid()) + ".pt"))
                                      .string();
  return path;
}

int libtorchCrashes = 0;
bool probe = true;

void atExit() {
  std::remove(inputPath().c_str());
  std::fprintf(stderr,
               "rewrite_fuzzer: skipped %d inputs that libtorch's own loader cannot survive\n",
               libtorchCrashes);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  // Intra-op threads would only add nondeterminism between runs of one input.
  at::set_num_threads(1);
  const char *probeSetting = std::getenv("RDNA1_FUZZ_PROBE");
  probe = !probeSetting || std::string(probeSetting) != "0";
  inputPath(); // made before atExit is registered, so still there when it runs
  std::atexit(atExit);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  {
    std::ofstream out(inputPath(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char *>(data), static_cast<std::streamsize>(size));
    if (!out.flush()) {
      std::fprintf(stderr, "rewrite_fuzzer: cannot write %s\n", inputPath().c_str());
      std::abort();
    }
  }
  if (probe && !rdna1::testing::libtorchSurvivesLoading(inputPath(), 60, 1024)) {
    ++libtorchCrashes;
    return -1; // not kept in the corpus
  }
  rdna1::tool::RewriteRequest request;
  request.input = inputPath();
  request.dryRun = true;
  try {
    rdna1::tool::rewriteFile(request);
  } catch (const rdna1::tool::ToolError &error) {
    // Bad input and unsupported models are expected; anything else is not.
    if (error.code() != rdna1::tool::kExitBadInput &&
        error.code() != rdna1::tool::kExitCannotRewrite) {
      std::fprintf(stderr, "rewrite_fuzzer: unexpected exit code %d: %s\n", error.code(),
                   error.what());
      std::abort();
    }
  } catch (const std::exception &error) {
    std::fprintf(stderr, "rewrite_fuzzer: exception that is not a ToolError: %s\n", error.what());
    std::abort();
  }
  return 0;
}
