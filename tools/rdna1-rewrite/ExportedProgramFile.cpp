#include "ExportedProgramFile.h"

#include "ToolError.h"

#include <rdna1/Backend.h>
#include <rdna1/TorchCompat.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <unistd.h>
#include <vector>

namespace rdna1::tool {
namespace {

constexpr uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr uint32_t kZip64EndLocator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr uint32_t kCentralHeader = 0x02014b50;

uint64_t readLE(const unsigned char *p, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i)
    value = value << 8 | p[i];
  return value;
}

bool readAt(std::ifstream &in, uint64_t offset, uint64_t count, std::vector<unsigned char> &out) {
  out.resize(count);
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(reinterpret_cast<char *>(out.data()), static_cast<std::streamsize>(count));
  return static_cast<uint64_t>(in.gcount()) == count;
}

// The names in the zip's central directory; empty where it cannot be read.
std::vector<std::string> zipEntryNames(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return {};
  in.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  if (size < 22)
    return {};
  const uint64_t tail = std::min<uint64_t>(size, 22 + 65535);
  std::vector<unsigned char> bytes;
  if (!readAt(in, size - tail, tail, bytes))
    return {};
  int64_t end = -1; // the end-of-central-directory record, searched from the back
  for (int64_t i = static_cast<int64_t>(tail) - 22; i >= 0 && end < 0; --i)
    if (readLE(&bytes[i], 4) == kEndOfCentralDirectory)
      end = i;
  if (end < 0)
    return {};
  uint64_t entries = readLE(&bytes[end + 10], 2);
  uint64_t directorySize = readLE(&bytes[end + 12], 4);
  uint64_t directoryOffset = readLE(&bytes[end + 16], 4);
  const uint64_t endOffset = size - tail + static_cast<uint64_t>(end);
  std::vector<unsigned char> record;
  if (directoryOffset == 0xffffffffu && endOffset >= 20 && readAt(in, endOffset - 20, 20, record) &&
      readLE(record.data(), 4) == kZip64EndLocator) {
    const uint64_t zip64End = readLE(&record[8], 8);
    if (!readAt(in, zip64End, 56, record) || readLE(record.data(), 4) != kZip64End)
      return {};
    entries = readLE(&record[32], 8);
    directorySize = readLE(&record[40], 8);
    directoryOffset = readLE(&record[48], 8);
  }
  if (directoryOffset > size || directorySize > size - directoryOffset ||
      !readAt(in, directoryOffset, directorySize, bytes))
    return {};
  std::vector<std::string> names;
  for (uint64_t at = 0, n = 0; n < entries && at + 46 <= bytes.size(); ++n) {
    if (readLE(&bytes[at], 4) != kCentralHeader)
      return {};
    const uint64_t nameLength = readLE(&bytes[at + 28], 2);
    const uint64_t skip = nameLength + readLE(&bytes[at + 30], 2) + readLE(&bytes[at + 32], 2);
    if (at + 46 + nameLength > bytes.size())
      return {};
    names.emplace_back(reinterpret_cast<const char *>(&bytes[at + 46]), nameLength);
    at += 46 + skip;
  }
  return names;
}

// The runtime library this tool links: the Python side loads the same one.
std::string runtimeLibraryPath() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void *>(&rdna1::backendName), &info) == 0 || !info.dli_fname)
    return "";
  return std::filesystem::absolute(info.dli_fname).string();
}

// The Python that runs the export pass: RDNA1_PYTHON in the environment, else the one this
// build was configured with (cmake/SelectTorch.cmake).
std::string pythonExecutable() {
  const char *fromEnvironment = std::getenv("RDNA1_PYTHON");
  return fromEnvironment && *fromEnvironment ? fromEnvironment : RDNA1_PYTHON_EXECUTABLE;
}

// Imports the pass and runs it; an rdna1 package that cannot be imported (missing, or built for
// another torch) is one line and exit 6, as other internal errors.
constexpr const char *kBootstrap = R"(import sys
try:
    from rdna1.export_cli import main
except Exception as error:
    line = (str(error).strip() or type(error).__name__).splitlines()[0]
    print('rdna1-rewrite: error: internal error: cannot import the rdna1 Python package that '
          'rewrites torch.export programs (' + line + '); set RDNA1_PYTHON to a Python that has it',
          file=sys.stderr)
    sys.exit(6)
sys.exit(main(sys.argv[1:]))
)";

} // namespace

bool isExportedProgramFile(const std::string &path) {
  for (const std::string &name : zipEntryNames(path)) {
    const auto slash = name.find('/');
    if (slash != std::string::npos &&
        name.compare(slash + 1, std::string::npos, "archive_format") == 0)
      return true;
  }
  return false;
}

int rewriteExportedProgram(int argc, char **argv) {
  if (!compat::kHasTorchExport) {
    std::cerr << "rdna1-rewrite: error: cannot rewrite a torch.export program (.pt2): this "
                 "rdna1-rewrite is built for torch "
              << compat::kTorchVersion
              << ", and torch.export needs torch 2.x; use rdna1 built for torch 2.x "
                 "(docs/install.md)\n";
    return kExitBadInput;
  }
  const std::string python = pythonExecutable();
  // From the build tree, the package is the source tree's; an installed one is on sys.path.
  if (std::filesystem::is_directory(RDNA1_PYTHON_PACKAGE_DIR)) {
    const char *current = std::getenv("PYTHONPATH");
    const std::string value = std::string(RDNA1_PYTHON_PACKAGE_DIR) +
                              (current && *current ? std::string(":") + current : "");
    ::setenv("PYTHONPATH", value.c_str(), 1);
  }
  const std::string runtime = runtimeLibraryPath();
  if (!runtime.empty())
    ::setenv("RDNA1_RUNTIME", runtime.c_str(), 0);
  std::vector<std::string> words{python, "-c", kBootstrap, "--prog", "rdna1-rewrite"};
  for (int i = 1; i < argc; ++i)
    words.emplace_back(argv[i]);
  std::vector<char *> arguments;
  for (std::string &word : words)
    arguments.push_back(word.data());
  arguments.push_back(nullptr);
  std::cout.flush();
  ::execv(python.c_str(), arguments.data());
  std::cerr << "rdna1-rewrite: error: internal error: cannot run " << python
            << " to rewrite a torch.export program: " << std::strerror(errno)
            << "; set RDNA1_PYTHON to a Python with torch 2.x and the rdna1 package\n";
  return kExitInternal;
}

} // namespace rdna1::tool
