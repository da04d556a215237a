#include "HostOpPolicy.h"

#include "OpSymbols.h"

#include <rdna1/OpSchemas.h>

#include <torch/csrc/jit/frontend/function_schema_parser.h>

#include <string>
#include <unordered_map>
#include <unordered_set>

namespace rdna1::passes {
namespace {

using torch::jit::Node;
using torch::jit::Value;

c10::Symbol aten(const char *name) {
  return c10::Symbol::fromQualString(std::string("aten::") + name);
}

const std::unordered_map<c10::Symbol, OpClass> &opClasses() {
  static const auto *classes = [] {
    auto *m = new std::unordered_map<c10::Symbol, OpClass>{
        {symbols::kConv, OpClass::Conv},         {symbols::kBatchNorm, OpClass::Norm},
        {symbols::kInstanceNorm, OpClass::Norm}, {c10::prim::ListConstruct, OpClass::List},
        {c10::prim::ListUnpack, OpClass::List},  {aten("append"), OpClass::List},
    };
    for (const char *name :
         {"relu",         "relu_",      "relu6",       "gelu",       "silu",
          "silu_",        "sigmoid",    "sigmoid_",    "tanh",       "tanh_",
          "hardtanh",     "hardtanh_",  "hardswish",   "hardswish_", "hardsigmoid",
          "hardsigmoid_", "leaky_relu", "leaky_relu_", "elu",        "elu_",
          "mish",         "add",        "add_",        "sub",        "sub_",
          "mul",          "mul_",       "div",         "div_",       "clamp",
          "clamp_",       "neg",        "dropout",     "dropout_",   "feature_dropout",
          "layer_norm",   "group_norm", "contiguous"})
      m->emplace(aten(name), OpClass::Light);
    for (const char *name : {"max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d",
                             "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
                             "adaptive_avg_pool3d", "adaptive_max_pool2d", "mean"})
      m->emplace(aten(name), OpClass::Shrinking);
    // Not aten::view: host tensors are channels-last, where the view of the
    // model's layout may not exist (ReshapeInsteadOfView turns the views that
    // nothing writes to into reshapes, which are hosted).
    for (const char *name : {"flatten", "reshape", "permute", "transpose", "squeeze", "unsqueeze",
                             "cat", "stack", "constant_pad_nd", "pad", "chunk", "split"})
      m->emplace(aten(name), OpClass::Shape);
    for (const char *name : {"upsample_nearest1d", "upsample_nearest2d", "upsample_bilinear2d"})
      m->emplace(aten(name), OpClass::Growing);
    for (const char *name : {"linear", "matmul", "mm", "bmm", "addmm", "einsum", "softmax",
                             "scaled_dot_product_attention"})
      m->emplace(aten(name), OpClass::Heavy);
    return m;
  }();
  return *classes;
}

// The index of argument `name` in a schema given as OpSchemas.h spells it.
size_t argumentIndex(const char *schema, const char *name) {
  const c10::FunctionSchema parsed = torch::jit::parseSchema(schema);
  const auto index = parsed.argumentIndexWithName(name);
  TORCH_INTERNAL_ASSERT(index, "no argument ", name, " in ", schema);
  return *index;
}

} // namespace

c10::optional<OpClass> classifyOp(const Node *node) {
  const auto found = opClasses().find(node->kind());
  return found == opClasses().end() ? c10::nullopt : c10::make_optional(found->second);
}

const char *opClassName(OpClass cls) {
  switch (cls) {
  case OpClass::Conv:
    return "convolution";
  case OpClass::Norm:
    return "norm";
  case OpClass::Light:
    return "elementwise";
  case OpClass::Shrinking:
    return "pooling";
  case OpClass::Shape:
    return "shape";
  case OpClass::Growing:
    return "upsampling";
  case OpClass::List:
    return "list";
  case OpClass::Heavy:
    return "matrix product";
  }
  return "?";
}

bool readsOnlyMetadata(const Node *node) {
  static const std::unordered_set<c10::Symbol> kinds{
      aten("size"),     aten("dim"),    aten("numel"),     aten("len"),
      c10::prim::dtype, aten("__is__"), aten("__isnot__"), aten("is_floating_point")};
  return kinds.count(node->kind()) != 0;
}

bool isDropout(const Node *node) {
  static const std::unordered_set<c10::Symbol> kinds{aten("dropout"), aten("dropout_"),
                                                     aten("feature_dropout")};
  return kinds.count(node->kind()) != 0;
}

Value *dropoutTrainFlag(const Node *node) {
  return node->namedInput("train");
}

NormStatistics normStatistics(const Node *node) {
  static const size_t batchMean = argumentIndex(ops::kBatchNormSchema, "running_mean");
  static const size_t batchVar = argumentIndex(ops::kBatchNormSchema, "running_var");
  static const size_t batchTraining = argumentIndex(ops::kBatchNormSchema, "training");
  static const size_t instanceMean = argumentIndex(ops::kInstanceNormSchema, "running_mean");
  static const size_t instanceVar = argumentIndex(ops::kInstanceNormSchema, "running_var");
  static const size_t instanceStats = argumentIndex(ops::kInstanceNormSchema, "use_input_stats");
  if (node->kind() == symbols::kBatchNorm)
    return {node->input(batchMean), node->input(batchVar), node->input(batchTraining)};
  return {node->input(instanceMean), node->input(instanceVar), node->input(instanceStats)};
}

} // namespace rdna1::passes
