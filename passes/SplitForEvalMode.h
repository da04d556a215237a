// Splits a method into a copy for training mode and one for eval mode (its
// training flags false, SpecializeEvalPath.h) where the eval copy, once given
// host regions, crosses the bus less often than the method as it is. Each copy
// costs load time and memory, so a split that saves no crossing is not made.
// RewriteModule runs it on forward before InsertHostRegions, then outlines the
// copies (OutlineEvalPath.h).
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <string>

namespace rdna1::passes {

// The prim::If between the two copies, or nullptr where the method reads no
// training flag or the split would save no crossing. `decision` says which and
// why, or stays empty when there is nothing to split.
torch::jit::Node *SplitForEvalMode(const std::shared_ptr<torch::jit::Graph> &graph,
                                   std::string &decision);

} // namespace rdna1::passes
