// rdna1::conv_batch_norm against rdna1::batch_norm of rdna1::conv: in
// inference with backend device the norm is folded into the convolution
// (folded again whenever a parameter or statistic changes); training mode,
// recorded gradients and backend host run the two ops, statistics included.
#include "Counters.h"

#include <rdna1/Backend.h>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <optional>
#include <string>
#include <vector>

namespace {

using Optional = c10::optional<at::Tensor>;
using IntList = std::vector<int64_t>;

struct Layer {
  at::Tensor weight, bias, normWeight, normBias, mean, var;
  IntList stride{1, 1}, padding{1, 1}, dilation{1, 1};
  int64_t groups = 1;
};

Layer makeLayer(int64_t in, int64_t out, int64_t groups = 1) {
  const auto options = at::TensorOptions().dtype(at::kDouble);
  Layer layer;
  layer.weight = at::randn({out, in / groups, 3, 3}, options);
  layer.bias = at::randn({out}, options);
  layer.normWeight = at::rand({out}, options) + 0.5;
  layer.normBias = at::randn({out}, options);
  layer.mean = at::randn({out}, options);
  layer.var = at::rand({out}, options) + 0.5;
  layer.groups = groups;
  return layer;
}

at::Tensor fused(const at::Tensor &x, const Layer &l, bool training, bool withBias = true) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("rdna1::conv_batch_norm", "")
          .typed<at::Tensor(const at::Tensor &, const at::Tensor &, const Optional &,
                            c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef, bool,
                            c10::IntArrayRef, int64_t, const Optional &, const Optional &,
                            const Optional &, const Optional &, bool, double, double, bool)>();
  return op.call(x, l.weight, withBias ? Optional(l.bias) : c10::nullopt, l.stride, l.padding,
                 l.dilation, false, {}, l.groups, l.normWeight, l.normBias, l.mean, l.var, training,
                 0.1, 1e-5, false);
}

// ATen's convolution and batch norm, on copies of the statistics.
at::Tensor reference(const at::Tensor &x, const Layer &l, bool training, at::Tensor &mean,
                     at::Tensor &var, bool withBias = true) {
  const at::Tensor y = at::convolution(x, l.weight, withBias ? Optional(l.bias) : c10::nullopt,
                                       l.stride, l.padding, l.dilation, false, {0, 0}, l.groups);
  return at::batch_norm(y, l.normWeight, l.normBias, mean, var, training, 0.1, 1e-5, false);
}

double maxDiff(const at::Tensor &a, const at::Tensor &b) {
  return (a - b).abs().max().item<double>();
}

int64_t counter(const std::string &name) {
  return rdna1::Counters::get().snapshot().at(name);
}

class ConvBatchNorm : public ::testing::Test {
protected:
  void SetUp() override {
    at::manual_seed(7);
    rdna1::setBackend(rdna1::Backend::Device);
    rdna1::Counters::get().reset();
  }
  void TearDown() override { rdna1::setBackend(std::nullopt); }
};

TEST_F(ConvBatchNorm, InferenceFoldsTheNormIntoTheConvolution) {
  at::NoGradGuard noGrad;
  for (const int64_t groups : {1, 2})
    for (const bool withBias : {true, false}) {
      const Layer l = makeLayer(4, 6, groups);
      const at::Tensor x = at::randn({2, 4, 9, 8}, at::kDouble);
      at::Tensor mean = l.mean.clone(), var = l.var.clone();
      const at::Tensor want = reference(x, l, false, mean, var, withBias);
      rdna1::Counters::get().reset();
      for (int call = 0; call < 2; ++call)
        EXPECT_LE(maxDiff(fused(x, l, false, withBias), want), 1e-12)
            << "groups " << groups << " bias " << withBias;
      EXPECT_EQ(counter("folded_conv_norms"), 2);
      EXPECT_EQ(counter("conv_norm_folds"), 1) << "folded once, then kept";
      EXPECT_EQ(counter("eval_norms"), 0);
    }
}

TEST_F(ConvBatchNorm, FoldsAgainWhenAParameterOrStatisticChanges) {
  at::NoGradGuard noGrad;
  Layer l = makeLayer(4, 6);
  const at::Tensor x = at::randn({2, 4, 7, 7}, at::kDouble);
  const auto expectMatches = [&](const char *after) {
    at::Tensor mean = l.mean.clone(), var = l.var.clone();
    EXPECT_LE(maxDiff(fused(x, l, false), reference(x, l, false, mean, var)), 1e-12) << after;
  };
  expectMatches("first call");
  l.weight.mul_(1.5);
  expectMatches("convolution weight edited in place");
  l.bias.add_(1);
  expectMatches("convolution bias edited in place");
  l.normWeight.mul_(0.5);
  expectMatches("norm weight edited in place");
  l.var = l.var + 1;
  expectMatches("a new running variance");
  fused(x, l, true); // updates the running statistics in place, no version bump
  expectMatches("statistics updated in training mode");
  EXPECT_EQ(counter("conv_norm_folds"), 6);
}

TEST_F(ConvBatchNorm, TrainingUpdatesStatisticsAndGradientsAsTheTwoOps) {
  Layer l = makeLayer(4, 6);
  for (at::Tensor *t : {&l.weight, &l.bias, &l.normWeight, &l.normBias})
    t->requires_grad_(true);
  const at::Tensor x = at::randn({3, 4, 6, 5}, at::kDouble).requires_grad_(true);
  for (const bool training : {true, false}) {
    at::Tensor mean = l.mean.clone(), var = l.var.clone();
    const at::Tensor want = reference(x, l, training, mean, var);
    const at::Tensor got = fused(x, l, training);
    EXPECT_LE(maxDiff(got, want), 1e-12) << "training " << training;
    EXPECT_LE(maxDiff(l.mean, mean), 1e-12) << "running mean, training " << training;
    EXPECT_LE(maxDiff(l.var, var), 1e-12) << "running variance, training " << training;
    const at::Tensor seed = at::randn_like(want);
    const std::vector<at::Tensor> wrt{x, l.weight, l.bias, l.normWeight, l.normBias};
    const auto wantGrads = torch::autograd::grad({want}, wrt, {seed});
    const auto gotGrads = torch::autograd::grad({got}, wrt, {seed});
    for (size_t i = 0; i < wrt.size(); ++i)
      EXPECT_LE(maxDiff(gotGrads[i], wantGrads[i]), 1e-10)
          << "gradient " << i << ", training " << training;
  }
  EXPECT_EQ(counter("folded_conv_norms"), 0) << "recorded gradients keep the two ops";
}

TEST_F(ConvBatchNorm, HostBackendKeepsTheTwoOps) {
  rdna1::setBackend(rdna1::Backend::Host);
  at::NoGradGuard noGrad;
  const Layer l = makeLayer(4, 6);
  const at::Tensor x = at::randn({2, 4, 9, 8}, at::kDouble);
  at::Tensor mean = l.mean.clone(), var = l.var.clone();
  EXPECT_LE(maxDiff(fused(x, l, false), reference(x, l, false, mean, var)), 1e-12);
  EXPECT_EQ(counter("folded_conv_norms"), 0);
  EXPECT_EQ(counter("eval_norms"), 1);
}

TEST_F(ConvBatchNorm, TrainingRejectsOneValuePerChannelBeforeUpdatingStatistics) {
  at::NoGradGuard noGrad;
  const Layer l = makeLayer(4, 6);
  const at::Tensor mean = l.mean.clone(), var = l.var.clone();
  try {
    fused(at::randn({1, 4, 1, 1}, at::kDouble), l, true);
    ADD_FAILURE() << "no error";
  } catch (const c10::ValueError &e) {
    EXPECT_NE(std::string(e.what()).find("Expected more than 1 value per channel when training, "
                                         "got input size [1, 6, 1, 1]"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(at::equal(l.mean, mean));
  EXPECT_TRUE(at::equal(l.var, var));
}

} // namespace
