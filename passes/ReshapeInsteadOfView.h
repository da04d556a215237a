// Turns aten::view into aten::reshape where nothing writes to the view or to
// what it views. Host tensors are channels-last (the layout the host
// convolutions run fastest in), and a view of the original layout may not
// exist there (x.view(n, -1) of a channels-last feature map fails). A reshape
// is the same view wherever the view exists and a copy elsewhere, so with no
// writer the values are the same everywhere. Views with writers stay views and
// are not hosted (HostOpPolicy); they run on the device, where the region's
// results arrive in the model's own layout.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <memory>

namespace rdna1::passes {

// The number of views replaced.
int ReshapeInsteadOfView(const std::shared_ptr<torch::jit::Graph> &graph);

} // namespace rdna1::passes
