// Lists the nodes left in a graph that would still reach cuDNN/MIOpen: a
// convolution or norm spelling the passes do not rewrite. The tool refuses to
// write a model that has any, rather than emit one that crashes on RDNA1.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <string>
#include <vector>

namespace rdna1::passes {

std::vector<std::string> FindDnnLibraryCalls(const std::shared_ptr<torch::jit::Graph> &graph);

// Nodes the passes do not rewrite that still reach cuDNN/MIOpen on a GPU when
// the library is enabled (CTC loss, grid sampling; a recurrent layer only in an
// overload LowerRecurrentLayers has no twin for): the model is written, with a
// warning for each (or refused with --strict).
std::vector<std::string> FindRemainingDnnUsers(const std::shared_ptr<torch::jit::Graph> &graph);

// The op kinds FindRemainingDnnUsers looks for (also what the export rewrite,
// python/rdna1/export.py, warns about: rdna1_tools::remaining_dnn_users).
const std::vector<std::string> &RemainingDnnUserKinds();

} // namespace rdna1::passes
