// Moves the two copies of a method that InsertHostRegions split for eval mode
// (SpecializeEvalPath.h) into methods of their own, `_rdna1_training_<name>`
// and `_rdna1_eval_<name>`: the method keeps its guard and one call in each
// branch. Why: loading a file, TorchScript's compiler takes memory superlinear
// in the names that only one branch of an `if` defines (the rewritten
// efficientnet_b7 took 16 GB to load with both copies inline, 1.6 GB unsplit);
// each method compiles on its own. With training copies per bus, a third
// copy, `_rdna1_training_conv_<name>`, sits beside the training copy
// (AddConvTrainingCopy), and eval mode may take the training copy instead of a
// copy of its own.
#pragma once

#include <string>

namespace torch::jit {
struct Module;
struct Node;
} // namespace torch::jit

namespace rdna1::passes {

std::string trainingCopyName(const std::string &method);
std::string evalCopyName(const std::string &method);
// The second training copy, which AddConvTrainingCopy adds.
std::string convTrainingCopyName(const std::string &method);

// Whether `name` is a copy outlined here, or a method whose copies were.
bool IsOutlinedCopy(const std::string &name);
bool HasOutlinedCopies(const torch::jit::Module &module, const std::string &method);

// Whether both names are free on the module's class (checked before splitting,
// so that the outlining cannot fail after it).
bool CanOutlineEvalPath(const torch::jit::Module &module, const std::string &method);

// `split` is the prim::If of the eval path in `method`'s graph. Without
// `evalCopy`, eval mode calls the training copy, which reads the training
// flags itself: for when an eval copy would save no crossing, since each copy
// costs load time and memory.
void OutlineEvalPath(torch::jit::Module &module, const std::string &method, torch::jit::Node *split,
                     bool evalCopy = true);

// After OutlineEvalPath: a second copy of the training copy, the conv copy
// (RewriteModule leaves it without regions: convolutions alone on the host,
// each on its own), and a choice between the two in `split`'s training branch, made by
// the runtime per call (rdna1::train_with_conv_regions) for the device of
// `method`'s first tensor argument (or none, if it has none): which regions
// train faster depends on the bus, which only the machine that runs it knows.
void AddConvTrainingCopy(torch::jit::Module &module, const std::string &method,
                         torch::jit::Node *split);

} // namespace rdna1::passes
