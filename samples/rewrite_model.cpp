// rdna1-rewrite-model IN.pt OUT.pt: rewrites a model in-process through the rewriter library
// (rdna1::rewriter, <rdna1/Rewriter.h>), as a C++ program that rewrites models itself would:
// load, rdna1::rewrite, save. Prints the rewrite's summary line.
#include <rdna1/Rewriter.h>

#include <torch/script.h>

#include <iostream>

int main(int argc, char **argv) {
  if (argc != 3) {
    std::cerr << "usage: rdna1-rewrite-model IN.pt OUT.pt\n";
    return 1;
  }
  try {
    torch::jit::Module model = torch::jit::load(argv[1]);
    const rdna1::RewriteResult result = rdna1::rewrite(model);
    for (const std::string &warning : result.warnings)
      std::cerr << "rdna1-rewrite-model: warning: " << warning << "\n";
    model.save(argv[2]);
    std::cout << result.summary << "\n";
    return 0;
  } catch (const std::exception &error) {
    const std::string message = error.what();
    std::cerr << "rdna1-rewrite-model: error: " << message.substr(0, message.find('\n')) << "\n";
    return 1;
  }
}
