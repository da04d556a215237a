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

std::vector<int64_t> parseShape(const std::string &text) {
  std::vector<int64_t> shape;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, 'x'))
    shape.push_back(std::stoll(part));
  if (shape.empty())
    throw std::invalid_argument("empty shape");
  return shape;
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
