// Freezes, in an inlined method graph, the module attributes that steer its
// branches (torchvision's use_res_connect, stride, drop_rate,
// memory_efficient...) to their values at rewrite time, and folds the branches
// that become constant, as torch.jit.freeze does: a branch on a module flag
// would otherwise split host regions. Only bool, int, float and str attributes
// are frozen, and never `training` (flipped by .train()/.eval()) nor any
// attribute that a method of the model sets itself (prim::SetAttr): those stay
// dynamic. What the model computes for any input is unchanged.
#pragma once

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/ir.h>

#include <string>
#include <vector>

namespace rdna1::passes {

// Returns the frozen attributes as "path=value" (e.g. "features.1.use_res_connect=False").
std::vector<std::string> SpecializeModuleFlags(const torch::jit::Module &module,
                                               std::shared_ptr<torch::jit::Graph> &graph);

} // namespace rdna1::passes
