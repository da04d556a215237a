// rdna1-run-model MODEL.pt SHAPE [--compare ORIGINAL.pt] [--device cpu|cuda] [--seed N]
//
// Loads a TorchScript model with torch::jit::load (a rewritten one needs only
// librdna1_runtime.so linked), runs it on a seeded random input of SHAPE
// (e.g. 2x3x64x64) and prints the output's shape; with --compare, also runs
// ORIGINAL.pt on the same input and prints the largest absolute difference.
#include <torch/script.h>

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string model;
  std::vector<int64_t> shape;
  std::string compare;
  std::string device = "cpu";
  uint64_t seed = 0;
};

// "2x3x64x64": positive integers separated by 'x', nothing else (so "1,1,8,8" is an error,
// not [1]).
std::vector<int64_t> parseShape(const std::string &text) {
  std::vector<int64_t> shape;
  size_t start = 0;
  while (true) {
    const size_t end = text.find('x', start);
    const std::string part = text.substr(start, end == std::string::npos ? end : end - start);
    if (part.empty() || part.size() > 12 ||
        part.find_first_not_of("0123456789") != std::string::npos || std::stoll(part) == 0)
      throw std::invalid_argument("invalid shape '" + text +
                                  "': expected positive integers separated by 'x', e.g. 2x3x64x64");
    shape.push_back(std::stoll(part));
    if (end == std::string::npos)
      return shape;
    start = end + 1;
  }
}

Options parseOptions(int argc, char **argv) {
  if (argc < 3)
    throw std::invalid_argument(
        "usage: rdna1-run-model MODEL.pt SHAPE [--compare ORIGINAL.pt] [--device D] [--seed N]");
  Options options{argv[1], parseShape(argv[2])};
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--compare")
      options.compare = argv[i + 1];
    else if (flag == "--device")
      options.device = argv[i + 1];
    else if (flag == "--seed")
      options.seed = std::stoull(argv[i + 1]);
    else
      throw std::invalid_argument("unknown option " + flag);
  }
  return options;
}

at::Tensor run(const std::string &path, const at::Tensor &input, const torch::Device &device) {
  torch::jit::Module module = torch::jit::load(path, device);
  module.eval();
  torch::NoGradGuard noGrad;
  return module.forward({input}).toTensor().to(torch::kCPU);
}

} // namespace

int main(int argc, char **argv) {
  try {
    const Options options = parseOptions(argc, argv);
    const torch::Device device(options.device);
    torch::manual_seed(options.seed);
    const at::Tensor input = torch::randn(options.shape).to(device);
    const at::Tensor output = run(options.model, input, device);
    std::cout << "output shape " << output.sizes() << "\n";
    if (!options.compare.empty()) {
      const at::Tensor expected = run(options.compare, input, device);
      std::cout << "max |original - rewritten| = " << (output - expected).abs().max().item<double>()
                << "\n";
    }
    return 0;
  } catch (const c10::Error &error) {
    const std::string message = error.what_without_backtrace();
    std::cerr << "rdna1-run-model: error: " << message.substr(0, message.find('\n')) << "\n";
  } catch (const std::exception &error) {
    const std::string message = error.what();
    std::cerr << "rdna1-run-model: error: " << message.substr(0, message.find('\n'));
    if (message.find("rdna1::") != std::string::npos)
      std::cerr << " (link librdna1_runtime.so, or load it with dlopen, before torch::jit::load)";
    std::cerr << "\n";
  }
  return 1;
}
