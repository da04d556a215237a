#include "RewriteFile.h"

#include "ToolError.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/script.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace rdna1::tool {
namespace {

// The first line, without libtorch's "(Could this error message be improved? ...)" plea.
std::string firstLine(const std::string &text) {
  std::string line = text.substr(0, text.find('\n'));
  const auto plea = line.find("  (Could this error message be improved?");
  return plea == std::string::npos ? line : line.substr(0, plea);
}

// libtorch's messages carry backtraces and source excerpts after the first line.
std::string describe(const std::exception &error) {
  if (const auto *c10Error = dynamic_cast<const c10::Error *>(&error))
    return firstLine(c10Error->what_without_backtrace());
  return firstLine(error.what());
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

torch::jit::Module loadModel(const std::string &path, torch::jit::ExtraFilesMap &extra) {
  try {
    // Convolutions run on the host anyway; CPU loading also works on machines without a GPU.
    return torch::jit::load(path, torch::kCPU, extra);
  } catch (const std::exception &error) {
    throw ToolError(kExitBadInput, "cannot load '" + path + "': " + describe(error));
  }
}

void checkOutputPath(const std::string &input, const std::string &output) {
  std::error_code ec;
  if (fs::exists(output, ec) && fs::equivalent(input, output, ec))
    throw ToolError(kExitCannotWrite,
                    "refusing to overwrite the input '" + input + "': choose another OUT");
  if (fs::is_directory(output, ec))
    throw ToolError(kExitCannotWrite, "cannot write '" + output + "': it is a directory");
  const fs::path parent = fs::absolute(output, ec).parent_path();
  if (!fs::is_directory(parent, ec))
    throw ToolError(kExitCannotWrite,
                    "cannot write '" + output + "': no directory '" + parent.string() + "'");
  if (::access(parent.c_str(), W_OK) != 0)
    throw ToolError(kExitCannotWrite, "cannot write '" + output + "': directory '" +
                                          parent.string() + "' is not writable");
}

// Saves next to `output` and renames over it, so readers see the old file or
// the whole new one, never a part.
void saveAtomically(const torch::jit::Module &module, const std::string &output,
                    const torch::jit::ExtraFilesMap &extra) {
  const std::string temporary = output + ".tmp-" + std::to_string(::getpid());
  try {
    module.save(temporary, extra);
  } catch (const std::exception &error) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw ToolError(kExitCannotWrite, "cannot write '" + output + "': " + describe(error));
  }
  std::error_code ec;
  fs::rename(temporary, output, ec);
  if (ec) {
    fs::remove(temporary, ec);
    throw ToolError(kExitCannotWrite, "cannot write '" + output + "': " + ec.message());
  }
}

std::string describeDnnCalls(const passes::ModuleReport &report) {
  for (const auto &method : report.methods)
    if (!method.dnnLibraryCalls.empty())
      return method.dnnLibraryCalls.front() + " in " + method.owner + "." + method.method;
  return "";
}

} // namespace

passes::ModuleReport rewriteFile(const RewriteRequest &request) {
  checkReadable(request.input);
  if (!request.dryRun)
    checkOutputPath(request.input, request.output);
  torch::jit::ExtraFilesMap extra = inspectArchive(request.input);
  torch::jit::Module module = loadModel(request.input, extra);
  passes::ModuleReport report;
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
  if (!request.dryRun)
    saveAtomically(module, request.output, extra);
  return report;
}

} // namespace rdna1::tool
