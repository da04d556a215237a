#include "LowerConvolutions.h"

#include "OpSymbols.h"

#include "GraphWalk.h"

#include <rdna1/OpSchemas.h>

#include <torch/csrc/jit/ir/ir.h>

#include <unordered_map>

namespace rdna1::passes {
namespace {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

// The arguments of one rdna1::conv call. With `stringPadding`, `padding` is a
// str and the call targets the rdna1::conv.padding overload, which takes no
// `transposed` or `outputPadding`.
struct ConvCall {
  Value *input, *weight, *bias, *stride, *padding, *dilation, *transposed, *outputPadding, *groups;
  bool stringPadding = false;
  enum class Epilogue { None, Relu, AddRelu } epilogue = Epilogue::None;
  Value *addend = nullptr, *alpha = nullptr; // Epilogue::AddRelu: relu(conv + alpha * addend)
};

// Argument positions of each spelling, by name. -1: absent (filled with a default).
struct Spelling {
  int input, weight, bias, stride, padding, dilation, transposed, outputPadding, groups;
  ConvCall::Epilogue epilogue = ConvCall::Epilogue::None;
};

// clang-format off
//                                       in w  bias str pad dil tr  opad grp
const Spelling kPlain                  {0, 1, 2,   3,  4,  5,  -1, -1,  6};
const Spelling kTranspose              {0, 1, 2,   3,  4,  7,  -1, 5,   6};
const Spelling kGeneric                {0, 1, 2,   3,  4,  5,  6,  7,   8};
const Spelling kCudnn                  {0, 1, -1,  3,  2,  4,  -1, -1,  5};
const Spelling kCudnnTranspose         {0, 1, -1,  4,  2,  5,  -1, 3,   6};
const Spelling kMiopen                 {0, 1, 2,   4,  3,  5,  -1, -1,  6};
const Spelling kMiopenTranspose        {0, 1, 2,   5,  3,  6,  -1, 4,   7};
const Spelling kCudnnRelu              {0, 1, 2,   3,  4,  5,  -1, -1,  6, ConvCall::Epilogue::Relu};
const Spelling kCudnnAddRelu           {0, 1, 4,   5,  6,  7,  -1, -1,  8, ConvCall::Epilogue::AddRelu};
// clang-format on

struct SpellingEntry {
  Spelling spelling;
  bool transposed;
};

const std::unordered_map<c10::Symbol, SpellingEntry> &spellings() {
  static const auto *table = [] {
    auto *t = new std::unordered_map<c10::Symbol, SpellingEntry>();
    auto add = [t](const char *name, Spelling s, bool transposed) {
      t->emplace(c10::Symbol::fromQualString(name), SpellingEntry{s, transposed});
    };
    add("aten::conv1d", kPlain, false);
    add("aten::conv2d", kPlain, false);
    add("aten::conv3d", kPlain, false);
    add("aten::_convolution_mode", kPlain, false);
    add("aten::conv_transpose1d", kTranspose, true);
    add("aten::conv_transpose2d", kTranspose, true);
    add("aten::conv_transpose3d", kTranspose, true);
    add("aten::convolution", kGeneric, false);
    add("aten::_convolution", kGeneric, false);
    add("aten::cudnn_convolution", kCudnn, false);
    add("aten::cudnn_convolution_transpose", kCudnnTranspose, true);
    add("aten::miopen_convolution", kMiopen, false);
    add("aten::miopen_depthwise_convolution", kMiopen, false);
    add("aten::miopen_convolution_transpose", kMiopenTranspose, true);
    add("aten::mkldnn_convolution", kMiopen, false);
    add("aten::cudnn_convolution_relu", kCudnnRelu, false);
    add("aten::cudnn_convolution_add_relu", kCudnnAddRelu, false);
    return t;
  }();
  return *table;
}

bool isString(const Value *value) {
  return value->type()->kind() == c10::TypeKind::StringType;
}

// Reads the operands of `node`; constants for absent ones are inserted at the
// current insertion point.
ConvCall readConvCall(Node *node, const SpellingEntry &entry) {
  Graph &graph = *node->owningGraph();
  const Spelling &s = entry.spelling;
  auto at = [node](int index) { return node->input(index); };
  ConvCall call{};
  call.input = at(s.input);
  call.weight = at(s.weight);
  call.bias = s.bias >= 0 ? at(s.bias) : graph.insertConstant(c10::IValue());
  call.stride = at(s.stride);
  call.padding = at(s.padding);
  call.dilation = at(s.dilation);
  call.transposed = s.transposed >= 0 ? at(s.transposed) : graph.insertConstant(entry.transposed);
  call.outputPadding =
      s.outputPadding >= 0 ? at(s.outputPadding) : graph.insertConstant(std::vector<int64_t>{});
  call.groups = at(s.groups);
  call.stringPadding = isString(call.padding);
  call.epilogue = s.epilogue;
  if (call.epilogue == ConvCall::Epilogue::AddRelu) {
    call.addend = at(2);
    call.alpha = at(3);
  }
  return call;
}

Value *emitConvCall(Graph &graph, const ConvCall &call, const torch::jit::SourceRange &range) {
  std::vector<Value *> inputs{call.input,  call.weight,  call.bias,
                              call.stride, call.padding, call.dilation};
  if (!call.stringPadding) {
    inputs.push_back(call.transposed);
    inputs.push_back(call.outputPadding);
  }
  inputs.push_back(call.groups);
  Node *conv = graph.insertNode(graph.create(symbols::kConv, inputs, 1));
  conv->setSourceRange(range);
  conv->output()->setType(c10::TensorType::get());
  Value *result = conv->output();
  if (call.epilogue == ConvCall::Epilogue::AddRelu) {
    std::vector<torch::jit::NamedValue> kwargs;
    if (call.alpha->type()->kind() != c10::TypeKind::NoneType)
      kwargs.emplace_back("alpha", call.alpha);
    result = graph.insert(c10::aten::add, {result, call.addend}, kwargs, range);
  }
  if (call.epilogue != ConvCall::Epilogue::None)
    result = graph.insert(c10::aten::relu, {result}, {}, range);
  return result;
}

// Whether the node has the shape this table expects. An add-relu whose alpha is
// an Optional[float] decided at run time is left alone (and then reported).
bool isRewritable(const Node *node, const SpellingEntry &entry) {
  const Spelling &s = entry.spelling;
  const int needed = 1 + std::max({s.input, s.weight, s.bias, s.stride, s.padding, s.dilation,
                                   s.transposed, s.outputPadding, s.groups});
  if (static_cast<int>(node->inputs().size()) < needed || node->outputs().size() != 1)
    return false;
  if (s.epilogue == ConvCall::Epilogue::AddRelu) {
    const auto alphaKind = node->input(3)->type()->kind();
    return alphaKind == c10::TypeKind::NoneType || alphaKind == c10::TypeKind::FloatType ||
           alphaKind == c10::TypeKind::IntType || alphaKind == c10::TypeKind::NumberType;
  }
  return true;
}

} // namespace

bool isConvolutionSpelling(c10::Symbol kind) {
  return spellings().count(kind) != 0;
}

RewriteCounts LowerConvolutions(const std::shared_ptr<Graph> &graph) {
  RewriteCounts counts;
  for (Node *node : allNodes(graph)) {
    const auto found = spellings().find(node->kind());
    if (found == spellings().end() || !isRewritable(node, found->second))
      continue;
    torch::jit::WithInsertPoint insertBefore(node);
    Value *result = emitConvCall(*graph, readConvCall(node, found->second), node->sourceRange());
    result->copyMetadata(node->output());
    node->output()->replaceAllUsesWith(result);
    node->destroy();
    ++counts[found->first.toQualString()];
  }
  return counts;
}

} // namespace rdna1::passes
