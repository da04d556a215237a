// Runs the rewrite passes over every method graph of a loaded TorchScript
// module: each method of each (sub)module class and each free function, once.
#pragma once

#include "RewriteCounts.h"

#include <rdna1/RewriteOptions.h>

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
  RewriteCounts recurrent;                    // LSTM, GRU and plain RNN layers
  std::vector<std::string> dnnLibraryCalls;   // left behind: the model is not safe to write
  std::vector<std::string> remainingDnnUsers; // not rewritten, still reach cuDNN/MIOpen (CTC loss)
};

struct ModuleReport {
  std::vector<MethodReport> methods; // those with anything to report
  int regions = 0;                   // host regions inserted
  // Why regions were dropped, cut or trimmed, and which module flags were frozen.
  std::vector<std::string> regionDecisions;
  // Layers as a user counts them: convolution, norm and recurrent calls in the module's
  // largest own method (forward, for most models) with every call inlined. (A
  // class's method graph is one code site however many instances call it.)
  int convolutionLayers = 0;
  int normLayers = 0;
  int recurrentLayers = 0;
  std::string defaultBackend = "auto";
  bool backendChanged = false; // the baked-in default was added, changed or removed
  int convolutions() const;    // code sites
  int norms() const;
  int recurrent() const;
  int methodsChanged() const;
  bool safe() const;
  // Nothing rewritten: no convolution, norm, recurrent layer or region (e.g. a rewritten model).
  bool unchanged() const {
    return convolutions() + norms() + recurrent() == 0 && regions == 0 && !backendChanged;
  }
};

// Rewrites the method graphs in place. Run it on a module that has not been
// executed yet (e.g. freshly loaded): executors already built keep the old plan.
ModuleReport RewriteModule(torch::jit::Module &module, const RewriteOptions &options = {});

} // namespace rdna1::passes
