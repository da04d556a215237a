// Runs the rewrite passes over every method graph of a loaded TorchScript
// module: each method of each (sub)module class and each free function, once.
#pragma once

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

struct ModuleReport {
  std::vector<MethodReport> methods; // those with anything to report
  int convolutions() const;
  int norms() const;
  int methodsChanged() const;
  bool safe() const;
};

ModuleReport RewriteModule(torch::jit::Module &module);

} // namespace rdna1::passes
