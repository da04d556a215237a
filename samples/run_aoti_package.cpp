// rdna1-run-aoti-package PACKAGE.pt2 INPUTS.pt OUTPUTS.pt [--device cpu|cuda] [--backend B]
//
// Runs an AOTInductor package of a rewritten program (rdna1.aot_compile, docs/export.md) with
// torch::inductor::AOTIModelPackageLoader. The package's code calls the rdna1:: operators through
// AOTInductor's proxy executor, which finds them in the dispatcher: linking rdna1::runtime is all
// it takes. INPUTS.pt holds the forward's tensors as a list (torch.save([x], "inputs.pt"));
// the outputs are written to OUTPUTS.pt as a tuple (torch.load reads it).
#include <rdna1/Backend.h>
#include <rdna1/TorchCompat.h>

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

static_assert(RDNA1_HAS_AOTI_PACKAGE_LOADER, "AOTInductor packages need torch 2.6 or later");

namespace {

struct Options {
  std::string package;
  std::string inputs;
  std::string outputs;
  std::string device = "cpu";
  std::string backend; // empty: the runtime's own choice (RDNA1_BACKEND, else auto)
};

Options parseOptions(int argc, char **argv) {
  if (argc < 4)
    throw std::invalid_argument("usage: rdna1-run-aoti-package PACKAGE.pt2 INPUTS.pt OUTPUTS.pt "
                                "[--device cpu|cuda] [--backend auto|host|device|vendor]");
  Options options{argv[1], argv[2], argv[3]};
  for (int i = 4; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--device")
      options.device = argv[i + 1];
    else if (flag == "--backend")
      options.backend = argv[i + 1];
    else
      throw std::invalid_argument("unknown option " + flag);
  }
  return options;
}

std::vector<char> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("cannot read '" + path + "'");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<at::Tensor> loadInputs(const std::string &path, const torch::Device &device) {
  const c10::IValue value = torch::jit::pickle_load(readFile(path));
  std::vector<at::Tensor> inputs;
  for (const c10::IValue &item : value.toListRef())
    inputs.push_back(item.toTensor().to(device));
  return inputs;
}

void saveOutputs(const std::vector<at::Tensor> &outputs, const std::string &path) {
  // A tuple of tensors: torch.load(weights_only=True), the default since torch 2.6, reads it.
  std::vector<c10::IValue> onHost;
  for (const at::Tensor &output : outputs)
    onHost.emplace_back(output.to(torch::kCPU));
  const std::vector<char> bytes =
      torch::jit::pickle_save(c10::ivalue::Tuple::create(std::move(onHost)));
  std::ofstream out(path, std::ios::binary);
  if (!out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())))
    throw std::runtime_error("cannot write '" + path + "'");
}

} // namespace

int main(int argc, char **argv) {
  try {
    const Options options = parseOptions(argc, argv);
    if (!options.backend.empty()) {
      const auto backend = rdna1::parseBackend(options.backend);
      if (!backend)
        throw std::invalid_argument("unknown backend '" + options.backend + "'");
      rdna1::setBackend(*backend);
    }
    const torch::Device device(options.device);
    torch::inductor::AOTIModelPackageLoader loader(options.package);
    torch::NoGradGuard noGrad;
    const std::vector<at::Tensor> outputs = loader.run(loadInputs(options.inputs, device));
    saveOutputs(outputs, options.outputs);
    for (const at::Tensor &output : outputs)
      std::cout << "output shape " << output.sizes() << "\n";
    return 0;
  } catch (const c10::Error &error) {
    const std::string message = error.what_without_backtrace();
    std::cerr << "rdna1-run-aoti-package: error: " << message.substr(0, message.find('\n')) << "\n";
  } catch (const std::exception &error) {
    const std::string message = error.what();
    std::cerr << "rdna1-run-aoti-package: error: " << message.substr(0, message.find('\n')) << "\n";
  }
  return 1;
}
