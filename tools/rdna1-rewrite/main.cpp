// rdna1-rewrite IN.pt OUT.pt: rewrites a TorchScript model so that its
// convolutions run through the rdna1 runtime instead of cuDNN/MIOpen.
#include "CrashIsolation.h"
#include "ExportedProgramFile.h"
#include "ReportJson.h"
#include "RewriteFile.h"
#include "Summary.h"
#include "ToolError.h"
#include <rdna1/DeviceProbe.h>

#include <rdna1/Backend.h>
#include <rdna1/RewriteOptions.h>

#include <llvm/Support/CommandLine.h>
#include <llvm/Support/raw_ostream.h>

#include <fstream>
#include <iostream>

namespace cl = llvm::cl;
using namespace rdna1;

namespace {

cl::OptionCategory category("rdna1-rewrite options");

cl::opt<std::string> inputPath(cl::Positional, cl::desc("<in.pt>"), cl::cat(category));
cl::opt<std::string> outputPath(cl::Positional, cl::desc("<out.pt>"), cl::cat(category));
cl::opt<bool> dryRun("dry-run", cl::desc("Rewrite in memory and report; write nothing"),
                     cl::cat(category));
cl::opt<std::string> reportPath("report", cl::value_desc("file.json"),
                                cl::desc("Write what was rewritten, by class, method and node "
                                         "kind, as JSON (docs/report.md); - for standard output"),
                                cl::cat(category));
cl::opt<bool> strict("strict",
                     cl::desc("Refuse (exit 3) models with nodes that are not rewritten but still "
                              "reach cuDNN/MIOpen on a GPU (RNNs, CTC loss, grid sampling); "
                              "without it each is a warning"),
                     cl::cat(category));
// "<intro>: name (help), name (help)" from an option's table of values (RewriteOptions.h).
template <typename Table> std::string describeValues(const std::string &intro, const Table &table) {
  std::string text = intro + ":";
  for (const auto &each : table)
    text += std::string(" ") + each.name + " (" + each.help + "),";
  text.pop_back();
  return text;
}

const std::string regionsHelp =
    describeValues("How host work is grouped between bus crossings", kRegionModeNames);
cl::opt<std::string> regions("regions", cl::value_desc("mode"), cl::init("auto"),
                             cl::desc(regionsHelp), cl::cat(category));
const std::string backendHelp = describeValues(
    "Default backend baked into OUT (RDNA1_BACKEND or the API override it)", kBackendNames);
cl::opt<std::string> backend("backend", cl::value_desc("name"), cl::init("auto"),
                             cl::desc(backendHelp), cl::cat(category));
cl::opt<bool> probe("probe",
                    cl::desc("Probe this machine's GPUs (crash-safe, cached), print the verdicts "
                             "and exit; IN is not needed"),
                    cl::cat(category));
cl::opt<bool> reprobe("reprobe", cl::desc("As --probe, ignoring cached verdicts"),
                      cl::cat(category));
cl::OptionCategory verifyCategory("Verification (before anything is written)");
cl::opt<bool> verify("verify",
                     cl::desc("Run the original and the rewritten model on the same random "
                              "inputs on the host; write OUT only if they agree"),
                     cl::cat(verifyCategory));
cl::list<std::string> inputShapes("input-shape", cl::value_desc("NxCxHxW"),
                                  cl::desc("Shape of one forward argument (repeat for several); "
                                           "implies --verify"),
                                  cl::cat(verifyCategory));
cl::opt<std::string> inputDtype("input-dtype", cl::value_desc("dtype"), cl::init("float32"),
                                cl::desc("float32, float64, float16, bfloat16 or int64"),
                                cl::cat(verifyCategory));
cl::opt<bool> verifyGrad("verify-grad",
                         cl::desc("Also compare input and parameter gradients (implies --verify)"),
                         cl::cat(verifyCategory));
cl::opt<double> tolerance("tolerance", cl::init(1e-4),
                          cl::desc("Largest accepted |difference| / max(1, |reference|)"),
                          cl::cat(verifyCategory));
cl::opt<bool> verbose("v",
                      cl::desc("List the rewritten nodes of each method, and why host regions "
                               "end, are trimmed or dropped"),
                      cl::cat(category));
cl::opt<std::string> emit("emit", cl::value_desc("ir"),
                          cl::desc("Print the rewritten IR of the model's own methods to "
                                   "standard output (the summary goes to standard error)"),
                          cl::cat(category));
cl::alias verboseLong("verbose", cl::desc("Alias for -v"), cl::aliasopt(verbose),
                      cl::cat(category));

constexpr const char *kOverview =
    "rewrites a TorchScript model so its convolutions never reach cuDNN/MIOpen\n\n"
    "  Every convolution (forward and backward) and batch/instance norm of IN, a\n"
    "  scripted, traced or frozen TorchScript model, becomes a call of the rdna1\n"
    "  runtime (MIOpen crashes on AMD RDNA1 GPUs). Where the convolutions run is\n"
    "  decided where OUT runs: on the GPU through ATen's own kernels if a crash-safe\n"
    "  probe says they work there, else on the host (--backend, --probe). Load OUT\n"
    "  after `import rdna1` in Python, or with librdna1_runtime.so linked in C++.\n\n"
    "  Exit codes: 0 done, 1 bad command line, 2 IN unreadable, damaged or not\n"
    "  TorchScript, 3 IN holds a node that cannot be rewritten (or, with --strict,\n"
    "  one that still reaches cuDNN/MIOpen), 4 OUT cannot be written, 5 --verify\n"
    "  found the models disagree (OUT not written), 6 internal error (the tool\n"
    "  crashed; nothing written).\n";

void printVersion(llvm::raw_ostream &out) {
  out << "rdna1-rewrite " << RDNA1_VERSION << "\n" << rdna1::describeHipDevices() << "\n";
}

void printDetails(const passes::ModuleReport &report) {
  for (const auto &method : report.methods) {
    std::cerr << method.owner << "." << method.method << ":";
    for (const auto &[kind, count] : method.convolutions)
      std::cerr << " " << kind << " x" << count;
    for (const auto &[kind, count] : method.norms)
      std::cerr << " " << kind << "(cudnn_enabled=false) x" << count;
    for (const auto &[kind, count] : method.recurrent)
      std::cerr << " " << kind << " x" << count;
    std::cerr << "\n";
  }
  for (const std::string &decision : report.regionDecisions)
    std::cerr << "regions: " << decision << "\n";
}

void writeReport(const std::string &json) {
  if (reportPath == "-") {
    std::cout << json;
    return;
  }
  std::ofstream out(reportPath);
  if (!(out << json))
    throw tool::ToolError(tool::kExitCannotWrite, "cannot write report '" + reportPath + "'");
}

int runRewrite() {
  try {
    tool::RewriteRequest request{inputPath, outputPath, dryRun, {}, {}};
    request.verify.enabled = verify || verifyGrad || !inputShapes.empty();
    request.verify.gradients = verifyGrad;
    request.verify.dtype = inputDtype;
    request.verify.tolerance = tolerance;
    if (request.verify.enabled && inputShapes.empty()) {
      std::cerr << "rdna1-rewrite: error: --verify needs --input-shape (e.g. 1x3x224x224)\n";
      return tool::kExitUsage;
    }
    for (const std::string &shape : inputShapes) {
      try {
        request.verify.inputShapes.push_back(tool::parseShape(shape));
      } catch (const std::exception &error) {
        std::cerr << "rdna1-rewrite: error: " << error.what() << "\n";
        return tool::kExitUsage;
      }
    }
    if (!emit.empty() && emit != "ir") {
      std::cerr << "rdna1-rewrite: error: --emit takes 'ir', got '" << emit << "'\n";
      return tool::kExitUsage;
    }
    request.emitIr = emit == "ir";
    request.options = tool::parseOptions(regions, backend, strict);
    request.onPhase = tool::reportPhase;
    const tool::RewriteOutcome outcome = tool::rewriteFile(request);
    const passes::ModuleReport &report = outcome.report;
    if (verbose)
      printDetails(report);
    for (const std::string &warning : tool::remainingDnnWarnings(report))
      std::cerr << "rdna1-rewrite: warning: " << warning << "\n";
    if (!reportPath.empty())
      writeReport(
          tool::reportJson(report, inputPath, dryRun ? std::string() : outputPath.getValue()));
    std::cout << outcome.ir;
    // With the report or the IR on standard output, the summary goes to standard error.
    (reportPath == "-" || request.emitIr ? std::cerr : std::cout)
        << tool::summaryLine(outcome, inputPath, tool::destinationOf(request)) << "\n";
    if (outcome.verified) {
      std::cout << "verified: max relative output error " << outcome.verified->outputError;
      if (outcome.verified->gradientError >= 0)
        std::cout << ", gradient error " << outcome.verified->gradientError;
      std::cout << " (tolerance " << tolerance << ")\n";
    }
    return tool::kExitOk;
  } catch (const tool::ToolError &error) {
    std::cerr << "rdna1-rewrite: error: " << error.what() << "\n";
    return error.code();
  } catch (const std::exception &error) {
    const std::string message = error.what();
    std::cerr << "rdna1-rewrite: error: " << message.substr(0, message.find('\n')) << "\n";
    return tool::kExitCannotRewrite;
  }
}

} // namespace

int main(int argc, char **argv) {
  cl::HideUnrelatedOptions({&category, &verifyCategory});
  cl::SetVersionPrinter(printVersion);
  cl::ParseCommandLineOptions(argc, argv, kOverview);
  if (probe || reprobe) {
    std::cout << rdna1::describeProbe(reprobe) << "\n";
    return tool::kExitOk;
  }
  if (inputPath.empty()) {
    std::cerr << "rdna1-rewrite: error: missing <in.pt> (see --help)\n";
    return tool::kExitUsage;
  }
  if (!dryRun && outputPath.empty()) {
    std::cerr << "rdna1-rewrite: error: missing <out.pt> (or pass --dry-run)\n";
    return tool::kExitUsage;
  }
  if (tool::isExportedProgramFile(inputPath)) // a .pt2, by its records: the export pass
    return tool::rewriteExportedProgram(argc, argv);
  return tool::runIsolated(runRewrite, inputPath, dryRun ? std::string() : std::string(outputPath));
}
