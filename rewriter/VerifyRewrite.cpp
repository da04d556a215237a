#include "VerifyRewrite.h"

#include <torch/script.h>

#include <sstream>
#include <stdexcept>

namespace rdna1::tool {
namespace {

c10::ScalarType parseDtype(const std::string &name) {
  if (name == "float32" || name == "float")
    return at::kFloat;
  if (name == "float64" || name == "double")
    return at::kDouble;
  if (name == "float16" || name == "half")
    return at::kHalf;
  if (name == "bfloat16")
    return at::kBFloat16;
  if (name == "int64" || name == "long")
    return at::kLong;
  throw std::invalid_argument("unknown input dtype '" + name +
                              "' (float32, float64, float16, bfloat16 or int64)");
}

std::vector<at::Tensor> makeInputs(const VerifyOptions &options) {
  const c10::ScalarType dtype = parseDtype(options.dtype);
  torch::manual_seed(0);
  std::vector<at::Tensor> inputs;
  for (const auto &shape : options.inputShapes)
    inputs.push_back(dtype == at::kLong ? torch::randint(0, 10, shape, at::kLong)
                                        : torch::randn(shape).to(dtype));
  return inputs;
}

void collectTensors(const c10::IValue &value, std::vector<at::Tensor> &out) {
  if (value.isTensor()) {
    out.push_back(value.toTensor());
  } else if (value.isTuple()) {
    for (const c10::IValue &element : value.toTupleRef().elements())
      collectTensors(element, out);
  } else if (value.isList()) {
    for (const c10::IValue &element : value.toListRef())
      collectTensors(element, out);
  } else if (value.isGenericDict()) {
    for (const auto &entry : value.toGenericDict())
      collectTensors(entry.value(), out);
  }
}

struct Run {
  std::vector<at::Tensor> outputs;
  std::vector<at::Tensor> gradients; // inputs', then parameters'
};

Run run(torch::jit::Module &module, const std::vector<at::Tensor> &inputs, bool gradients) {
  std::vector<c10::IValue> arguments;
  std::vector<at::Tensor> leaves;
  for (const at::Tensor &input : inputs) {
    at::Tensor leaf = input.clone();
    if (gradients && leaf.is_floating_point())
      leaf.requires_grad_(true);
    leaves.push_back(leaf);
    arguments.emplace_back(leaf);
  }
  c10::optional<at::NoGradGuard> noGrad;
  if (!gradients)
    noGrad.emplace();
  Run result;
  collectTensors(module.forward(arguments), result.outputs);
  if (!gradients)
    return result;
  torch::manual_seed(1);
  at::Tensor loss = at::zeros({}, at::kDouble);
  for (const at::Tensor &output : result.outputs)
    if (output.requires_grad())
      loss = loss + (output.to(at::kDouble) * torch::randn(output.sizes(), at::kDouble)).sum();
  if (loss.requires_grad())
    loss.backward();
  for (const at::Tensor &leaf : leaves)
    result.gradients.push_back(leaf.grad());
  for (const at::Tensor &param : module.parameters())
    result.gradients.push_back(param.grad());
  return result;
}

double relativeError(const std::vector<at::Tensor> &got, const std::vector<at::Tensor> &want) {
  if (got.size() != want.size())
    throw std::runtime_error("the rewritten model returns " + std::to_string(got.size()) +
                             " tensors, the original " + std::to_string(want.size()));
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!got[i].defined() || !want[i].defined()) {
      if (got[i].defined() != want[i].defined())
        throw std::runtime_error("a gradient exists for one model only");
      continue;
    }
    const at::Tensor a = got[i].detach().to(at::kDouble);
    const at::Tensor b = want[i].detach().to(at::kDouble);
    if (a.sizes() != b.sizes())
      throw std::runtime_error("result shapes differ");
    if (b.numel() == 0)
      continue;
    const double scale = std::max(1.0, b.abs().max().item<double>());
    worst = std::max(worst, (a - b).abs().max().item<double>() / scale);
  }
  return worst;
}

} // namespace

std::vector<int64_t> parseShape(const std::string &text) {
  std::vector<int64_t> shape;
  std::stringstream in(text);
  std::string part;
  const std::invalid_argument bad("bad input shape '" + text + "' (expected e.g. 1x3x224x224)");
  while (std::getline(in, part, 'x')) {
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos ||
        part.size() > 12)
      throw bad;
    shape.push_back(std::stoll(part));
  }
  if (shape.empty())
    throw bad;
  return shape;
}

VerifyResult verifyRewrite(torch::jit::Module &original, torch::jit::Module &rewritten,
                           const VerifyOptions &options) {
  const std::vector<at::Tensor> inputs = makeInputs(options);
  const Run want = run(original, inputs, options.gradients);
  const Run got = run(rewritten, inputs, options.gradients);
  VerifyResult result;
  result.outputError = relativeError(got.outputs, want.outputs);
  if (options.gradients)
    result.gradientError = relativeError(got.gradients, want.gradients);
  return result;
}

} // namespace rdna1::tool
