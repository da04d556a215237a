#include "RewriteFile.h"

#include "ArchiveIntegrity.h"

#include "ToolError.h"
#include "WriteModuleFile.h"
#include <rdna1/Backend.h>
#include <rdna1/TorchCompat.h>

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/script.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <unistd.h>

namespace fs = std::filesystem;

namespace rdna1::tool {
namespace {

// The first non-blank line, without libtorch's "(Could this error message be improved? ...)" plea.
std::string firstLine(const std::string &text) {
  const auto start = text.find_first_not_of(" \t\r\n");
  if (start == std::string::npos)
    return "";
  std::string line = text.substr(start, text.find('\n', start) - start);
  const auto plea = line.find("  (Could this error message be improved?");
  return plea == std::string::npos ? line : line.substr(0, plea);
}

// The TorchScript interpreter puts the cause on the last line of its message.
std::string interpreterCause(const std::string &text) {
  if (text.rfind("The following operation failed in the TorchScript interpreter", 0) != 0)
    return firstLine(text);
  std::string trimmed = text.substr(0, text.find_last_not_of("\n ") + 1);
  return firstLine(trimmed.substr(trimmed.find_last_of('\n') + 1));
}

// libtorch's messages carry backtraces and source excerpts after the first line.
std::string describe(const std::exception &error) {
  if (const auto *c10Error = dynamic_cast<const c10::Error *>(&error))
    return interpreterCause(c10Error->what_without_backtrace());
  return interpreterCause(error.what());
}

void checkReadable(const std::string &path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status))
    throw ToolError(kExitBadInput, "cannot read '" + path + "': no such file");
  if (fs::is_directory(status))
    throw ToolError(kExitBadInput, "cannot read '" + path + "': it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw ToolError(kExitBadInput, "cannot read '" + path + "': " + std::strerror(errno));
  char magic[4] = {};
  in.read(magic, sizeof magic);
  if (in.gcount() != 4 || std::memcmp(magic, "PK\x03\x04", 4) != 0)
    throw ToolError(kExitBadInput,
                    "'" + path +
                        "' is not a TorchScript model (not a zip archive); save one with "
                        "torch.jit.script(model).save(path) or torch.jit.trace");
}

// Lists the archive's extra files (torch.jit.save(_extra_files=...)) so they
// survive the rewrite, and rejects archives that are not TorchScript.
torch::jit::ExtraFilesMap inspectArchive(const std::string &path) {
  std::vector<std::string> records;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    records = reader.getAllRecords();
  } catch (const std::exception &error) {
    throw ToolError(kExitBadInput,
                    "'" + path + "' is not a TorchScript model (" + describe(error) + ")");
  }
  bool hasConstants = false;
  bool hasData = false;
  torch::jit::ExtraFilesMap extra;
  for (const std::string &record : records) {
    hasConstants = hasConstants || record == "constants.pkl";
    hasData = hasData || record == "data.pkl";
    if (record.rfind("extra/", 0) == 0)
      extra.emplace(record.substr(6), "");
  }
  if (!hasConstants)
    throw ToolError(kExitBadInput,
                    "'" + path + "' is not a TorchScript model" +
                        (hasData ? " (it looks like torch.save output; save a scripted or traced "
                                   "model with torch.jit.save instead)"
                                 : ""));
  return extra;
}

bool savedByTorch2(const std::string &path) {
  try {
    return caffe2::serialize::PyTorchStreamReader(path).hasRecord(compat::kTorch2ArchiveRecord);
  } catch (const std::exception &) {
    return false;
  }
}

torch::jit::Module loadModel(const std::string &path, torch::jit::ExtraFilesMap &extra) {
  try {
    // Convolutions run on the host anyway; CPU loading also works on machines without a GPU.
    return torch::jit::load(path, torch::kCPU, extra);
  } catch (const std::exception &error) {
    // A malformed archive can drive libtorch into undefined behaviour: it
    // crashes (CrashIsolation reports that) or throws an empty message.
    const std::string why = describe(error);
    if (!compat::kReadsEveryTorch2Archive && savedByTorch2(path))
      throw ToolError(kExitBadInput,
                      "cannot load '" + path +
                          "': it was saved by torch 2.x, newer than this tool's torch " +
                          compat::kTorchVersion + " (" + why +
                          "); rewrite it with rdna1 built for torch 2.x (docs/install.md)");
    throw ToolError(kExitBadInput,
                    "cannot load '" + path + "': " +
                        (why.find_first_not_of(" \t\r\n") == std::string::npos
                             ? "libtorch failed reading it without saying why; the archive is "
                               "malformed"
                             : why));
  }
}

void checkOutputPath(const std::string &input, const std::string &output) {
  std::error_code ec;
  if (fs::exists(output, ec) && fs::equivalent(input, output, ec))
    throw ToolError(kExitCannotWrite,
                    "refusing to overwrite the input '" + input + "': choose another OUT");
  const auto status = fs::status(output, ec);
  if (fs::is_directory(status))
    throw ToolError(kExitCannotWrite, "cannot write '" + output + "': it is a directory");
  // OUT is replaced by a rename, which would swap a device or pipe for a file.
  if (fs::exists(status) && !fs::is_regular_file(status))
    throw ToolError(kExitCannotWrite, "cannot write '" + output +
                                          "': it is not a regular file (a device, pipe or socket)");
  const fs::path parent = fs::absolute(output, ec).parent_path();
  if (!fs::is_directory(parent, ec))
    throw ToolError(kExitCannotWrite,
                    "cannot write '" + output + "': no directory '" + parent.string() + "'");
  if (::access(parent.c_str(), W_OK) != 0)
    throw ToolError(kExitCannotWrite, "cannot write '" + output + "': directory '" +
                                          parent.string() +
                                          "' is not writable: " + std::strerror(errno));
}

// Writes next to `output` (or, for a dry run, in the temporary directory); the
// caller renames it over `output` once it is accepted, so readers see the old
// file or the whole new one, never a part.
// With nothing rewritten, the temporary file is a byte-for-byte copy of the
// input: saving a loaded module again would not reproduce it exactly.
std::string writeTemporary(const torch::jit::Module &module, const RewriteRequest &request,
                           const torch::jit::ExtraFilesMap &extra, bool copyInput) {
  const std::string suffix = ".tmp-" + std::to_string(::getpid());
  std::string temporary = // not const: returned, so moved
      request.dryRun ? (fs::temp_directory_path() / ("rdna1-verify" + suffix + ".pt")).string()
                     : request.output + suffix;
  try {
    if (copyInput)
      copyFileBytes(request.input, temporary);
    else
      writeModuleFile(module, temporary, extra);
  } catch (const std::system_error &error) {
    std::error_code ignored;
    if (error.code() != std::errc::file_exists)
      fs::remove(temporary, ignored);
    throw ToolError(kExitCannotWrite,
                    "cannot write '" + request.output + "': " + error.code().message());
  } catch (const std::exception &error) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw ToolError(kExitCannotWrite, "cannot write '" + request.output + "': " + describe(error));
  }
  return temporary;
}

// Removes the temporary file however the scope is left, unless released.
class TemporaryFile {
public:
  explicit TemporaryFile(std::string path) : path_(std::move(path)) {}
  ~TemporaryFile() {
    std::error_code ignored;
    if (!path_.empty())
      fs::remove(path_, ignored);
  }
  TemporaryFile(const TemporaryFile &) = delete;
  TemporaryFile &operator=(const TemporaryFile &) = delete;
  const std::string &path() const { return path_; }
  void moveTo(const std::string &output) {
    std::error_code ec;
    fs::rename(path_, output, ec);
    if (ec)
      throw ToolError(kExitCannotWrite, "cannot write '" + output + "': " + ec.message());
    path_.clear();
  }

private:
  std::string path_;
};

// Compares the written file, loaded afresh, with a fresh load of the input: a
// verification run must not change the state (e.g. running statistics) saved.
VerifyResult verifyWritten(const RewriteRequest &request, const std::string &written) {
  torch::jit::ExtraFilesMap none;
  torch::jit::Module original = loadModel(request.input, none);
  torch::jit::Module rewritten = loadModel(written, none);
  VerifyResult result;
  try {
    result = verifyRewrite(original, rewritten, request.verify);
  } catch (const std::exception &error) {
    throw ToolError(kExitVerifyFailed, "verification could not run the model: " + describe(error));
  }
  const double worst = std::max(result.outputError, result.gradientError);
  if (worst > request.verify.tolerance) {
    std::ostringstream message;
    message << "verification failed: max relative "
            << (result.outputError >= result.gradientError ? "output" : "gradient") << " error "
            << worst << " > tolerance " << request.verify.tolerance << "; nothing written";
    throw ToolError(kExitVerifyFailed, message.str());
  }
  return result;
}

std::string describeDnnCalls(const passes::ModuleReport &report) {
  for (const auto &method : report.methods)
    if (!method.dnnLibraryCalls.empty())
      return method.dnnLibraryCalls.front() + " in " + method.owner + "." + method.method;
  return "";
}

} // namespace

RewriteOptions parseOptions(const std::string &regions, const std::string &backend, bool strict) {
  try {
    return parseRewriteOptions(regions, backend, strict);
  } catch (const std::invalid_argument &error) {
    throw ToolError(kExitUsage, error.what());
  }
}

RewriteOutcome rewriteFile(const RewriteRequest &request) {
  checkReadable(request.input);
  if (!request.dryRun)
    checkOutputPath(request.input, request.output);
  request.onPhase("loading");
  torch::jit::ExtraFilesMap extra = inspectArchive(request.input);
  torch::jit::Module module = loadModel(request.input, extra);
  // libtorch does not check the entries' CRC-32s: damaged weights load and run.
  // (After loading: an archive that crashes libtorch is reported as such.)
  if (const auto damage = findArchiveDamage(request.input))
    throw ToolError(kExitBadInput, "cannot read '" + request.input + "': " + *damage);
  passes::ModuleReport report;
  request.onPhase("rewriting");
  try {
    report = passes::RewriteModule(module, request.options);
  } catch (const std::exception &error) {
    throw ToolError(kExitCannotRewrite,
                    "cannot rewrite '" + request.input + "': " + describe(error));
  }
  if (!report.safe())
    throw ToolError(kExitCannotRewrite, "cannot rewrite '" + request.input +
                                            "': unsupported node " + describeDnnCalls(report) +
                                            " would still reach cuDNN/MIOpen");
  if (request.options.strict)
    for (const auto &method : report.methods)
      if (!method.remainingDnnUsers.empty())
        throw ToolError(kExitCannotRewrite, "cannot rewrite '" + request.input +
                                                "': " + method.remainingDnnUsers.front() + " in " +
                                                method.owner + "." + method.method +
                                                " would still reach cuDNN/MIOpen (--strict)");
  RewriteOutcome outcome{report, std::nullopt, report.unchanged(), {}};
  if (request.emitIr)
    for (const torch::jit::Method &method : module.get_methods())
      outcome.ir += "graph of " + method.name() + ":\n" +
                    method.graph()->toString(/*print_source_locations=*/false);
  if (request.dryRun && !request.verify.enabled)
    return outcome;
  request.onPhase("writing");
  TemporaryFile written(writeTemporary(module, request, extra, outcome.copiedInput));
  request.onPhase("verifying");
  if (request.verify.enabled)
    outcome.verified = verifyWritten(request, written.path());
  if (!request.dryRun)
    written.moveTo(request.output);
  return outcome;
}

} // namespace rdna1::tool
