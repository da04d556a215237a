// Bakes a default backend (rdna1/Backend.h) into a method: one rdna1::set_default_backend call at
// the top of its graph, which the runtime obeys for the thread running the model unless the user
// chose otherwise (API or RDNA1_BACKEND). "auto" is baked too: the call resets whatever default
// another model left on the thread, so every model runs with its own.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <string>

namespace rdna1::passes {

// Replaces an earlier such call; without one, adds it if `addIfMissing`. Returns whether the
// graph changed.
bool SetDefaultBackend(const std::shared_ptr<torch::jit::Graph> &graph, const std::string &backend,
                       bool addIfMissing);

} // namespace rdna1::passes
