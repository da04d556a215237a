// Gives an inlined method graph a second copy of its body for when no module
// trains: `if <any module's training flag>: <body> else: <body, training
// False, folded>`. Branches on `training` (torchvision's stochastic depth,
// dropout) draw random numbers on the device in training mode, so a host
// region cannot take them in; in the eval copy they fold away and one region
// can span the whole network. Every module's flag is read when the method
// runs, so .train()/.eval() on any submodule still choose the right copy, and
// what the model computes for any input and mode is unchanged.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <memory>
#include <string>

namespace rdna1::passes {

struct EvalPath {
  torch::jit::Block *evalBlock = nullptr; // the copy that runs when no module trains
  int flags = 0;                          // distinct training flags in the guard
  std::string whyNot;                     // set when the graph was left as it was
};

enum class SplitWhen {
  // A training flag steers anything but a norm (norms take the flag as an
  // argument and split no region): the eval copy can save crossings.
  FlagSteersMoreThanNorms,
  // Any training flag is read: the copies get regions of different modes
  // (rdna1-rewrite --train-regions).
  AnyFlagIsRead,
};

EvalPath SpecializeEvalPath(const std::shared_ptr<torch::jit::Graph> &graph,
                            SplitWhen when = SplitWhen::FlagSteersMoreThanNorms);

} // namespace rdna1::passes
