// One loaded rewritten module shared by threads that run forward and
// forward+backward at once, while another clears the host weight cache: every
// result equals the single-threaded one bit for bit. Built with ThreadSanitizer,
// which must find no race in our code (tests/sanitizers/tsan.supp).
#include "RewriteModule.h"
#include "StartGate.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/script.h>

#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 4;
constexpr int kRounds = 4;

struct Result {
  at::Tensor output;
  std::vector<at::Tensor> gradients; // input, then each parameter; empty for forward only
};

std::string samplePath(const std::string &file) {
  const char *dir = std::getenv("RDNA1_SANITIZER_SAMPLES");
  if (!dir)
    throw std::runtime_error("set RDNA1_SANITIZER_SAMPLES to a make_samples.py directory");
  return std::string(dir) + "/" + file;
}

// The bytes rdna1-rewrite would write for `file`: threads then run what a user
// loads from OUT, not the module the passes edited in place.
std::string rewrittenBytes(const std::string &file) {
  torch::jit::Module module = torch::jit::load(samplePath(file), torch::kCPU);
  const rdna1::passes::ModuleReport report = rdna1::passes::RewriteModule(module);
  EXPECT_GT(report.convolutions(), 0);
  EXPECT_TRUE(report.safe());
  std::ostringstream bytes;
  module.save(bytes);
  return bytes.str();
}

torch::jit::Module load(const std::string &bytes) {
  std::istringstream in(bytes);
  return torch::jit::load(in, torch::kCPU);
}

Result forward(torch::jit::Module &module, const at::Tensor &x) {
  c10::InferenceMode guard;
  return {module.forward({x}).toTensor(), {}};
}

Result forwardBackward(torch::jit::Module &module, const at::Tensor &x) {
  const at::Tensor input = x.clone().requires_grad_(true);
  const at::Tensor output = module.forward({input}).toTensor();
  std::vector<at::Tensor> wrt{input};
  for (const at::Tensor &param : module.parameters())
    if (param.requires_grad())
      wrt.push_back(param);
  // grad() rather than backward(): threads sharing parameters must not
  // accumulate into the same .grad.
  return {output.detach(), torch::autograd::grad({output.pow(2).sum()}, wrt)};
}

// Forward only or forward+backward, alternating so both kinds overlap.
bool trains(int thread, int round) {
  return (thread + round) % 2 == 1;
}

void clearParamCache() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rdna1::clear_param_cache", "")
                             .typed<void()>();
  op.call();
}

void expectIdentical(const Result &actual, const Result &expected, const std::string &where) {
  ASSERT_TRUE(actual.output.defined()) << where;
  EXPECT_TRUE(at::equal(actual.output, expected.output)) << where << ": output";
  ASSERT_EQ(actual.gradients.size(), expected.gradients.size()) << where;
  for (size_t k = 0; k < expected.gradients.size(); ++k)
    EXPECT_TRUE(at::equal(actual.gradients[k], expected.gradients[k]))
        << where << ": gradient " << k;
}

class ConcurrentModule
    : public ::testing::TestWithParam<std::pair<const char *, std::vector<int64_t>>> {
protected:
  // Results must not depend on how ATen splits work between its own threads.
  void SetUp() override { at::set_num_threads(1); }
};

TEST_P(ConcurrentModule, ThreadsMatchSingleThreadedRunExactly) {
  const auto &[file, shape] = GetParam();
  const std::string bytes = rewrittenBytes(file);
  std::vector<at::Tensor> inputs;
  for (int t = 0; t < kThreads; ++t)
    inputs.push_back(at::randn(shape));

  // The reference runs on a module of its own, so the shared one starts cold
  // and its threads also race through the executor's first (profiling) runs.
  torch::jit::Module reference = load(bytes);
  std::vector<Result> expectedForward, expectedTraining;
  for (const at::Tensor &x : inputs) {
    expectedForward.push_back(forward(reference, x));
    expectedTraining.push_back(forwardBackward(reference, x));
  }

  torch::jit::Module shared = load(bytes);
  std::vector<std::vector<Result>> results(kThreads, std::vector<Result>(kRounds));
  std::mutex errorsMutex;
  std::vector<std::string> errors;
  rdna1::testing::StartGate gate(kThreads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      gate.arriveAndWait();
      try {
        for (int r = 0; r < kRounds; ++r)
          results[t][r] =
              trains(t, r) ? forwardBackward(shared, inputs[t]) : forward(shared, inputs[t]);
      } catch (const std::exception &error) {
        std::lock_guard<std::mutex> lock(errorsMutex);
        errors.push_back(error.what());
      }
    });
  // The cache is cleared while it serves the threads' host regions.
  threads.emplace_back([&] {
    gate.arriveAndWait();
    for (int r = 0; r < kThreads * kRounds; ++r)
      clearParamCache();
  });
  for (std::thread &thread : threads)
    thread.join();

  ASSERT_TRUE(errors.empty()) << errors.front();
  for (int t = 0; t < kThreads; ++t)
    for (int r = 0; r < kRounds; ++r)
      expectIdentical(results[t][r], trains(t, r) ? expectedTraining[t] : expectedForward[t],
                      std::string(file) + " thread " + std::to_string(t) + " round " +
                          std::to_string(r));
}

INSTANTIATE_TEST_SUITE_P(
    Samples, ConcurrentModule,
    ::testing::Values(std::make_pair("unet_traced.pt", std::vector<int64_t>{2, 3, 32, 32}),
                      std::make_pair("audio_scripted.pt", std::vector<int64_t>{2, 1, 1600})),
    [](const auto &info) {
      std::string name = info.param.first;
      return name.substr(0, name.find('.'));
    });

} // namespace
