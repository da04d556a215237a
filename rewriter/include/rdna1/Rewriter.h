// The rewrite as a C++ library (rdna1::rewriter in CMake): what rdna1-rewrite
// and Python's rdna1.rewrite do, for programs that rewrite models themselves.
//
//   torch::jit::Module model = torch::jit::load("in.pt");
//   rdna1::RewriteResult result = rdna1::rewrite(model);  // before running it
//   model.save("out.pt");
//
// The rewritten model runs with the runtime (rdna1::runtime) linked.
#pragma once

#include <rdna1/RewriteOptions.h>

#include <string>
#include <vector>

namespace torch::jit {
struct Module;
} // namespace torch::jit

namespace rdna1 {

struct RewriteResult {
  std::string summary;               // the CLI's summary line
  std::string reportJson;            // docs/report.md
  std::vector<std::string> warnings; // nodes that still reach cuDNN/MIOpen (not rewritten)
};

// Rewrites `module` in place. Run it on a module that has not run yet (a
// fresh load): executors already built keep the old plan. `options` come from
// rdna1::parseRewriteOptions for names (RewriteOptions.h). Throws
// std::runtime_error with a one-line message for a node it cannot rewrite, or
// (strict) one that would still reach cuDNN/MIOpen.
RewriteResult rewrite(torch::jit::Module &module, const RewriteOptions &options = {});

// Rewrites the file `input` into `output` as rdna1-rewrite does: integrity
// checks, atomic and checked writing, IN never modified. Throws
// std::runtime_error with the tool's one-line message.
RewriteResult rewriteFile(const std::string &input, const std::string &output,
                          const RewriteOptions &options = {});

} // namespace rdna1
