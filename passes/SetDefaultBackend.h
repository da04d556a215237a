// Bakes a default backend (rdna1/Backend.h) into a method: one
// rdna1::set_default_backend call at the top of its graph, which the runtime
// obeys unless the user chose otherwise (API or RDNA1_BACKEND). "auto" bakes
// nothing, so files rewritten with the default stay as they were.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <string>

namespace rdna1::passes {

// Replaces any earlier such call. Returns whether the graph changed.
bool SetDefaultBackend(const std::shared_ptr<torch::jit::Graph> &graph, const std::string &backend);

} // namespace rdna1::passes
