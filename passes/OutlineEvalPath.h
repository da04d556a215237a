// Moves the two copies of a method split for eval mode (SpecializeEvalPath.h)
// into methods of their own, `_rdna1_training_<name>` and `_rdna1_eval_<name>`:
// the method keeps its guard and one call in each branch. Why: loading a file,
// TorchScript's compiler takes memory superlinear in the names that only one
// branch of an `if` defines (the rewritten efficientnet_b7 took 16 GB to load
// with both copies inline, 1.6 GB unsplit); each method compiles on its own.
#pragma once

#include <string>

namespace torch::jit {
struct Module;
struct Node;
} // namespace torch::jit

namespace rdna1::passes {

std::string trainingCopyName(const std::string &method);
std::string evalCopyName(const std::string &method);

// Whether `name` is a copy outlined here, or a method whose copies were.
bool IsOutlinedCopy(const std::string &name);
bool HasOutlinedCopies(const torch::jit::Module &module, const std::string &method);

// Whether both names are free on the module's class (checked before splitting,
// so that the outlining cannot fail after it).
bool CanOutlineEvalPath(const torch::jit::Module &module, const std::string &method);

// `split` is the prim::If of the eval path in `method`'s graph.
void OutlineEvalPath(torch::jit::Module &module, const std::string &method,
                     torch::jit::Node *split);

} // namespace rdna1::passes
