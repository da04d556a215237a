// --verify: runs the original and the rewritten model on the same seeded
// random inputs, on the host, and measures how far apart they are.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace torch::jit {
struct Module;
} // namespace torch::jit

namespace rdna1::tool {

struct VerifyOptions {
  bool enabled = false;
  std::vector<std::vector<int64_t>> inputShapes; // one per forward argument
  std::string dtype = "float32";
  bool gradients = false;  // also compare input and parameter gradients
  double tolerance = 1e-4; // on the largest |difference| / max(1, largest |reference|)
};

struct VerifyResult {
  double outputError = 0;
  double gradientError = -1; // negative: not compared
};

// Parses "1x3x224x224". Throws std::invalid_argument.
std::vector<int64_t> parseShape(const std::string &text);

VerifyResult verifyRewrite(torch::jit::Module &original, torch::jit::Module &rewritten,
                           const VerifyOptions &options);

} // namespace rdna1::tool
