// The host weight cache under contention, built with ThreadSanitizer: threads
// look up shared parameters and their own, update their own in place, let
// parameters die while others look up, and clear the cache meanwhile. Every
// lookup must return the values its parameters held at that moment.
#include "BatchedTransfer.h"
#include "HostParamCache.h"
#include "StartGate.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 4;
constexpr int kIterations = 300;

TEST(HostParamCacheStress, LookupsUpdatesDeathsAndClearsFromManyThreads) {
  at::set_num_threads(1);
  // Every tensor "needs a copy", made by the packing code of the real transfers.
  rdna1::HostParamCache cache(
      [](at::TensorList tensors) { return rdna1::packRoundTripForTests(tensors, true); },
      [](const at::Tensor &) { return true; });
  std::vector<at::Tensor> shared;
  for (int i = 0; i < 6; ++i)
    shared.push_back(at::full({2, 3, 2, 2}, static_cast<double>(i)));
  shared.push_back(at::arange(10));

  std::atomic<int> wrong{0};
  std::atomic<int> errors{0};
  rdna1::testing::StartGate gate(kThreads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      gate.arriveAndWait();
      try {
        const at::Tensor own = at::full({3, 5}, static_cast<double>(t));
        for (int it = 0; it < kIterations; ++it) {
          // Dies at the end of the iteration; its entry expires while others look up.
          const at::Tensor transient = at::full({4}, static_cast<double>(1000 * t + it));
          std::vector<at::Tensor> params = shared;
          params.push_back(own);
          params.push_back(transient);
          const std::vector<at::Tensor> host = cache.lookup(params);
          for (size_t k = 0; k < params.size(); ++k)
            if (!at::equal(host[k], params[k]))
              ++wrong;
          own.add_(1); // a new version: the next lookup must copy it again
        }
      } catch (...) {
        ++errors;
      }
    });
  threads.emplace_back([&] {
    gate.arriveAndWait();
    for (int it = 0; it < kIterations; ++it) {
      if (it % 8 == 0)
        cache.clear();
      (void)cache.size();
    }
  });
  for (std::thread &thread : threads)
    thread.join();

  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  // Every own and transient parameter has died: a miss drops their entries,
  // leaving the shared ones and the newcomer.
  const at::Tensor newcomer = at::ones({1});
  std::vector<at::Tensor> params = shared;
  params.push_back(newcomer);
  const std::vector<at::Tensor> host = cache.lookup(params);
  EXPECT_TRUE(at::equal(host.back(), newcomer));
  EXPECT_EQ(cache.size(), shared.size() + 1);
}

} // namespace
