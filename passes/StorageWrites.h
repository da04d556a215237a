// Whether anything in a graph may write to the storage a value shares: a walk
// through the values that share it (views and in-place results by their
// schemas, lists and tuples, If results). TorchScript's alias analysis cannot
// answer no for most models: every tensor that passes through a list (chunk,
// cat) joins one set with every module buffer, which the norms write. Unknown
// nodes, and storage from outside the graph (module attributes, arguments),
// count as writers. Order is not considered: a write before the value was
// made counts too.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

namespace rdna1::passes {

bool StorageMayBeWritten(torch::jit::Value *value);

} // namespace rdna1::passes
