// Turns a found host region into IR: one rdna1::to_host for the activations
// that flow in, one rdna1::host_params for the parameters it reads (their
// producers hoisted before it), one rdna1::to_device for the results used
// later, and the copy-back of running statistics that training-mode norms in
// the region update.
#pragma once

#include "RegionFinder.h"

#include <string>

namespace rdna1::passes {

// False, with the reason, for a region that reads no activation (nothing to batch).
bool emitHostRegion(torch::jit::Graph &graph, const Region &region, std::string &whyNot);

} // namespace rdna1::passes
