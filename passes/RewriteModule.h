// Runs the rewrite passes over every method graph of a loaded TorchScript
// module: each method of each (sub)module class and each free function, once.
#pragma once

#include "InsertHostRegions.h"
#include "RewriteCounts.h"

#include <string>
#include <vector>

namespace torch::jit {
struct Module;
} // namespace torch::jit

namespace rdna1::passes {

struct MethodReport {
  std::string owner;  // qualified class name, or the module path of a free function
  std::string method; // method or function name
  RewriteCounts convolutions;
  RewriteCounts norms;
  std::vector<std::string> dnnLibraryCalls; // left behind: the model is not safe to write
};

struct RewriteOptions {
  // Host regions in the module's own methods (inlined first), or none: then
  // each convolution moves its own operands ("per-op").
  bool regions = true;
  RegionMode regionMode = RegionMode::Auto;
};

struct ModuleReport {
  std::vector<MethodReport> methods; // those with anything to report
  int regions = 0;                   // host regions inserted
  int convolutions() const;
  int norms() const;
  int methodsChanged() const;
  bool safe() const;
};

// Rewrites the method graphs in place. Run it on a module that has not been
// executed yet (e.g. freshly loaded): executors already built keep the old plan.
ModuleReport RewriteModule(torch::jit::Module &module, const RewriteOptions &options = {});

} // namespace rdna1::passes
