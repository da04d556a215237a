// Which ops a host region may hold, and what kind of cost each has: the one
// table the region finder and its edge rules read (RegionCostModel.h says what
// the classes cost). An op missing from the table stays where it is.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <c10/util/Optional.h>

namespace rdna1::passes {

enum class OpClass {
  Conv,      // must run on the host
  Norm,      // rdna1 batch/instance norm: light, with running-statistics rules
  Light,     // elementwise and norms: cheap anywhere, keeps the size
  Shrinking, // pooling and means: the result is smaller than the input
  Growing,   // upsampling: the result is larger than the input
  Shape,     // views, concatenation, splitting, padding: no arithmetic
  List,      // tensor-list plumbing: construct, unpack, append
  Heavy,     // matrix products and attention: the device's job under auto
};

c10::optional<OpClass> classifyOp(const torch::jit::Node *node);
const char *opClassName(OpClass cls);

// Ops whose result does not depend on where the tensor lives (sizes, None checks).
bool readsOnlyMetadata(const torch::jit::Node *node);

bool isDropout(const torch::jit::Node *node);

// A dropout's `train` argument, a norm's running statistics and its training
// flag, read by schema name (the norms' schemas are in rdna1/OpSchemas.h).
torch::jit::Value *dropoutTrainFlag(const torch::jit::Node *node);
struct NormStatistics {
  torch::jit::Value *runningMean;
  torch::jit::Value *runningVar;
  torch::jit::Value *updatesStatistics; // batch_norm's training, instance_norm's use_input_stats
};
NormStatistics normStatistics(const torch::jit::Node *node);

} // namespace rdna1::passes
