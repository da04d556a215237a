// rdna1::batch_norm in inference (EvalBatchNorm.h) against ATen's batch norm:
// every rank and layout, with and without affine parameters; the kept scale
// and shift follow in-place edits, new storage and new tensors; gradients,
// training mode, inference tensors and half precision take ATen's kernel.
#include "EvalBatchNorm.h"
#include "Counters.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <vector>

namespace {

using Optional = c10::optional<at::Tensor>;

at::Tensor rdna1BatchNorm(const at::Tensor &input, const Optional &weight, const Optional &bias,
                          const Optional &mean, const Optional &var, bool training,
                          double eps = 1e-5) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("rdna1::batch_norm", "")
          .typed<at::Tensor(const at::Tensor &, const Optional &, const Optional &,
                            const Optional &, const Optional &, bool, double, double, bool)>();
  return op.call(input, weight, bias, mean, var, training, 0.1, eps, false);
}

at::Tensor atenBatchNorm(const at::Tensor &input, const Optional &weight, const Optional &bias,
                         const Optional &mean, const Optional &var, bool training,
                         double eps = 1e-5) {
  return at::batch_norm(input, weight, bias, mean, var, training, 0.1, eps, false);
}

struct Norm {
  at::Tensor weight, bias, mean, var;
};

Norm makeNorm(int64_t channels, at::ScalarType type) {
  const auto options = at::TensorOptions().dtype(type);
  return {at::randn({channels}, options), at::randn({channels}, options),
          at::randn({channels}, options), at::rand({channels}, options) + 0.5};
}

double maxDiff(const at::Tensor &got, const at::Tensor &want) {
  return (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>();
}

double tolerance(const at::Tensor &want) {
  const double scale = std::max(1.0, want.abs().max().item<double>());
  return (want.scalar_type() == at::kDouble ? 1e-12 : 2e-6) * scale;
}

// rdna1::batch_norm in inference on x matches ATen's with n as it is now.
void expectMatchesAten(const at::Tensor &x, const Norm &n, const char *after) {
  const at::Tensor want = atenBatchNorm(x, n.weight, n.bias, n.mean, n.var, false);
  const at::Tensor got = rdna1BatchNorm(x, n.weight, n.bias, n.mean, n.var, false);
  EXPECT_LE(maxDiff(got, want), tolerance(want)) << after;
}

TEST(EvalBatchNorm, MatchesAtenForEveryRankLayoutAndAffinity) {
  at::manual_seed(3);
  at::NoGradGuard noGrad;
  const std::vector<std::vector<int64_t>> shapes{{5, 6}, {3, 6, 7}, {2, 6, 5, 4}, {2, 6, 3, 4, 5}};
  for (const auto type : {at::kFloat, at::kDouble})
    for (const auto &shape : shapes)
      for (const bool affine : {true, false}) {
        const Norm n = makeNorm(6, type);
        const Optional weight = affine ? Optional(n.weight) : c10::nullopt;
        const Optional bias = affine ? Optional(n.bias) : c10::nullopt;
        at::Tensor x = at::randn(shape, at::TensorOptions().dtype(type));
        if (shape.size() == 4)
          x = x.contiguous(at::MemoryFormat::ChannelsLast);
        const at::Tensor want = atenBatchNorm(x, weight, bias, n.mean, n.var, false);
        for (int call = 0; call < 2; ++call) { // computed, then kept
          const at::Tensor got = rdna1BatchNorm(x, weight, bias, n.mean, n.var, false);
          EXPECT_LE(maxDiff(got, want), tolerance(want)) << shape.size() << "-d " << type;
          EXPECT_EQ(got.strides(), want.strides()) << shape.size() << "-d";
        }
      }
}

TEST(EvalBatchNorm, FollowsInPlaceEditsNewStorageAndNewTensors) {
  at::manual_seed(4);
  at::NoGradGuard noGrad;
  Norm n = makeNorm(4, at::kFloat);
  const at::Tensor x = at::randn({3, 4, 5, 5});
  expectMatchesAten(x, n, "the first call");
  n.var.mul_(3);
  expectMatchesAten(x, n, "an in-place edit of the running variance");
  n.weight.copy_(at::randn({4}));
  expectMatchesAten(x, n, "copy_ into the weight (as load_state_dict does)");
  n.mean.set_data(at::randn({4}));
  expectMatchesAten(x, n, "new storage for the running mean");
  n.bias = at::randn({4});
  expectMatchesAten(x, n, "a new bias tensor");
  const at::Tensor want = atenBatchNorm(x, n.weight, n.bias, n.mean, n.var, false, 1e-1);
  EXPECT_LE(maxDiff(rdna1BatchNorm(x, n.weight, n.bias, n.mean, n.var, false, 1e-1), want),
            tolerance(want))
      << "another eps";
}

// Under inference mode every activation is an inference tensor; the parameters
// are not, so their scale and shift are kept.
TEST(EvalBatchNorm, ScaleAndShiftAreComputedOncePerParameterState) {
  at::manual_seed(9);
  const Norm n = makeNorm(4, at::kFloat);
  auto &counters = rdna1::Counters::get();
  counters.reset();
  {
    c10::InferenceMode inference;
    for (int call = 0; call < 3; ++call)
      rdna1BatchNorm(at::randn({2, 4, 3, 3}) + 0, n.weight, n.bias, n.mean, n.var, false);
  }
  EXPECT_EQ(counters.evalNorms.load(), 3);
  EXPECT_EQ(counters.evalNormScales.load(), 1);
  {
    at::NoGradGuard noGrad; // kept under inference mode, used outside it
    const at::Tensor x = at::randn({2, 4, 3, 3});
    const at::Tensor want = atenBatchNorm(x, n.weight, n.bias, n.mean, n.var, false);
    EXPECT_LE(maxDiff(rdna1BatchNorm(x, n.weight, n.bias, n.mean, n.var, false), want),
              tolerance(want));
    EXPECT_EQ(counters.evalNormScales.load(), 1);
  }
  {
    at::NoGradGuard noGrad;
    n.var.add_(1);
  }
  c10::InferenceMode inference;
  rdna1BatchNorm(at::randn({2, 4, 3, 3}), n.weight, n.bias, n.mean, n.var, false);
  EXPECT_EQ(counters.evalNormScales.load(), 2) << "an edited variance is a new state";
}

// ATen's kernel updates running statistics without bumping their version
// counters; rdna1::batch_norm forgets what it kept for them, so inference
// after training-mode calls (BN recalibration: forward passes with no
// optimizer step) sees them.
TEST(EvalBatchNorm, FollowsStatisticsUpdatedInTrainingMode) {
  at::manual_seed(10);
  at::NoGradGuard noGrad;
  const Norm n = makeNorm(4, at::kFloat);
  const at::Tensor x = at::randn({3, 4, 5, 5});
  rdna1BatchNorm(x, n.weight, n.bias, n.mean, n.var, false);
  rdna1BatchNorm(at::randn({8, 4, 5, 5}) * 3 + 1, n.weight, n.bias, n.mean, n.var, true);
  expectMatchesAten(x, n, "training mode updated the running statistics");
}

// What rdna1.clear_param_cache() is for: writes through .data, which no
// version counter of the parameter records.
TEST(EvalBatchNorm, ClearingForgetsWritesThroughData) {
  at::manual_seed(11);
  at::NoGradGuard noGrad;
  const Norm n = makeNorm(4, at::kFloat);
  const at::Tensor x = at::randn({3, 4, 5, 5});
  rdna1BatchNorm(x, n.weight, n.bias, n.mean, n.var, false);
  n.var.variable_data().mul_(4);
  rdna1::clearKeptNorms();
  expectMatchesAten(x, n, "a write through .data, then clearKeptNorms");
}

TEST(EvalBatchNorm, GradientsMatchAten) {
  at::manual_seed(5);
  const Norm n = makeNorm(4, at::kDouble);
  const at::Tensor input = at::randn({3, 4, 5}, at::kDouble);
  const at::Tensor loadings = at::randn({3, 4, 5}, at::kDouble);
  std::vector<std::vector<at::Tensor>> grads;
  for (const bool ours : {true, false}) {
    const at::Tensor x = input.clone().requires_grad_(true);
    const at::Tensor w = n.weight.clone().requires_grad_(true);
    const at::Tensor b = n.bias.clone().requires_grad_(true);
    const at::Tensor y = ours ? rdna1BatchNorm(x, w, b, n.mean, n.var, false)
                              : atenBatchNorm(x, w, b, n.mean, n.var, false);
    const at::Tensor loss = (y * loadings).sum();
    grads.push_back(torch::autograd::grad({loss}, {x, w, b}));
  }
  for (size_t i = 0; i < 3; ++i)
    EXPECT_LE(maxDiff(grads[0][i], grads[1][i]), 1e-12) << "gradient " << i;
}

TEST(EvalBatchNorm, TrainingUpdatesStatisticsAsAten) {
  at::manual_seed(7);
  at::NoGradGuard noGrad;
  const Norm ours = makeNorm(4, at::kFloat);
  const Norm aten{ours.weight.clone(), ours.bias.clone(), ours.mean.clone(), ours.var.clone()};
  const at::Tensor x = at::randn({6, 4, 3, 3});
  const at::Tensor got = rdna1BatchNorm(x, ours.weight, ours.bias, ours.mean, ours.var, true);
  const at::Tensor want = atenBatchNorm(x, aten.weight, aten.bias, aten.mean, aten.var, true);
  EXPECT_LE(maxDiff(got, want), tolerance(want));
  EXPECT_LE(maxDiff(ours.mean, aten.mean), 1e-6);
  EXPECT_LE(maxDiff(ours.var, aten.var), 1e-6);
}

TEST(EvalBatchNorm, InferenceTensorsAndHalfPrecisionMatchAten) {
  at::manual_seed(8);
  {
    c10::InferenceMode inference;
    const Norm n = makeNorm(4, at::kFloat); // inference tensors have no version counter
    const at::Tensor x = at::randn({2, 4, 3, 3});
    const at::Tensor want = atenBatchNorm(x, n.weight, n.bias, n.mean, n.var, false);
    EXPECT_LE(maxDiff(rdna1BatchNorm(x, n.weight, n.bias, n.mean, n.var, false), want),
              tolerance(want));
  }
  at::NoGradGuard noGrad;
  const Norm n = makeNorm(4, at::kFloat);
  const at::Tensor x = at::randn({2, 4, 3, 3}).to(at::kBFloat16);
  const auto half = [](const at::Tensor &t) { return t.to(at::kBFloat16); };
  const at::Tensor want =
      atenBatchNorm(x, half(n.weight), half(n.bias), half(n.mean), half(n.var), false);
  const at::Tensor got =
      rdna1BatchNorm(x, half(n.weight), half(n.bias), half(n.mean), half(n.var), false);
  EXPECT_EQ(got.scalar_type(), at::kBFloat16);
  EXPECT_EQ(maxDiff(got, want), 0.0) << "ATen's own kernel for bfloat16";
}

} // namespace
