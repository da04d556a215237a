// Constant propagation until no branch condition is left to fold (at most
// four rounds): folding one branch can make an enclosing one's condition
// constant, which one round of TorchScript's pass does not see.
#pragma once

#include <torch/csrc/jit/passes/constant_propagation.h>

#include <memory>

namespace rdna1::passes {

inline void foldConstantBranches(std::shared_ptr<torch::jit::Graph> graph) {
  for (int round = 0; round < 4 && torch::jit::ConstantPropagationImmutableTypes(graph); ++round) {
  }
}

} // namespace rdna1::passes
