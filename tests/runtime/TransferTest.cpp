// The runtime's bus crossings, on a machine without a GPU: the packing of
// batched transfers (through the round trip BatchedTransfer exposes for tests,
// which shares its layout, packing and unpacking code), the host parameter
// cache (over host tensors, with a counting copier of its own) and the
// boundary ops through the dispatcher, where host tensors pass through.
#include "BatchedTransfer.h"
#include "HostParamCache.h"
#include "StandInDevice.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

// ---- The ops under test, through the dispatcher ----------------------------

std::vector<at::Tensor> toHost(at::TensorList tensors) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rdna1::to_host", "")
                             .typed<std::vector<at::Tensor>(at::TensorList)>();
  return op.call(tensors);
}

std::vector<at::Tensor> toDevice(at::TensorList tensors, const at::Tensor &like) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rdna1::to_device", "")
                             .typed<std::vector<at::Tensor>(at::TensorList, const at::Tensor &)>();
  return op.call(tensors, like);
}

std::vector<at::Tensor> hostParams(at::TensorList params) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rdna1::host_params", "")
                             .typed<std::vector<at::Tensor>(at::TensorList)>();
  return op.call(params);
}

c10::optional<at::Tensor> hostParam(const c10::optional<at::Tensor> &param) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rdna1::host_param", "")
                             .typed<c10::optional<at::Tensor>(const c10::optional<at::Tensor> &)>();
  return op.call(param);
}

void copyBack(at::TensorList targets, at::TensorList sources) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rdna1::copy_back", "")
                             .typed<void(at::TensorList, at::TensorList)>();
  op.call(targets, sources);
}

c10::Dict<std::string, int64_t> counters() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rdna1::counters", "")
                             .typed<c10::Dict<std::string, int64_t>()>();
  return op.call();
}

void resetCounters() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("rdna1::reset_counters", "").typed<void()>();
  op.call();
}

at::Tensor conv(const at::Tensor &input, const at::Tensor &weight,
                const c10::optional<at::Tensor> &bias) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("rdna1::conv", "")
          .typed<at::Tensor(const at::Tensor &, const at::Tensor &,
                            const c10::optional<at::Tensor> &, at::IntArrayRef, at::IntArrayRef,
                            at::IntArrayRef, bool, at::IntArrayRef, int64_t)>();
  return op.call(input, weight, bias, {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1);
}

int64_t counter(const std::string &name) {
  const auto all = counters();
  EXPECT_TRUE(all.contains(name)) << name;
  return all.contains(name) ? all.at(name) : -1;
}

// ---- Inputs ----------------------------------------------------------------

at::Tensor randomOf(at::IntArrayRef sizes, at::ScalarType dtype) {
  if (dtype == at::kBool)
    return at::randint(0, 2, sizes, at::kLong).to(at::kBool);
  if (dtype == at::kByte)
    return at::randint(0, 256, sizes, at::kLong).to(at::kByte);
  if (dtype == at::kLong)
    return at::randint(-(int64_t{1} << 40), int64_t{1} << 40, sizes, at::kLong);
  return at::randn(sizes, at::kDouble).to(dtype);
}

struct Case {
  std::string name;
  at::Tensor tensor;
};

// Every dtype, odd byte counts (alignment), zero-size, 0-d, non-contiguous
// (dense and not), with a storage offset, broadcast and channels-last inputs,
// and undefined tensors between them.
std::vector<Case> mixedInputs() {
  std::vector<Case> cases;
  cases.push_back({"f32 odd", randomOf({3, 5, 7}, at::kFloat)});
  cases.push_back({"f16 odd", randomOf({5}, at::kHalf)});
  cases.push_back({"undefined", at::Tensor()});
  cases.push_back({"bf16", randomOf({2, 3}, at::kBFloat16)});
  cases.push_back({"f64 single", randomOf({1}, at::kDouble)});
  cases.push_back({"int64", randomOf({7}, at::kLong)});
  cases.push_back({"bool", randomOf({3, 3}, at::kBool)});
  cases.push_back({"uint8 odd", randomOf({13}, at::kByte)});
  cases.push_back({"zero-size 1-d", at::empty({0}, at::kFloat)});
  cases.push_back({"zero-size 3-d", at::empty({2, 0, 3}, at::kDouble)});
  cases.push_back({"zero-size 4-d", at::empty({2, 3, 0, 4}, at::kFloat)});
  cases.push_back({"0-d f64", at::scalar_tensor(3.25, at::kDouble)});
  cases.push_back({"0-d int64", at::scalar_tensor(-7, at::kLong)});
  cases.push_back({"0-d bool", at::scalar_tensor(true, at::kBool)});
  cases.push_back({"transposed f32", randomOf({4, 6}, at::kFloat).t()});
  cases.push_back({"strided slice f16", randomOf({10, 10}, at::kHalf).slice(1, 1, 8, 2)});
  cases.push_back({"narrowed rows (offset)", randomOf({10, 3}, at::kDouble).narrow(0, 2, 5)});
  cases.push_back({"expanded", randomOf({3, 1}, at::kFloat).expand({3, 4})});
  cases.push_back({"4-d contiguous", randomOf({2, 3, 4, 5}, at::kFloat)});
  cases.push_back({"4-d channels-last",
                   randomOf({2, 3, 5, 5}, at::kHalf).contiguous(at::MemoryFormat::ChannelsLast)});
  cases.push_back(
      {"4-d permuted bf16", randomOf({2, 5, 3, 4}, at::kBFloat16).permute({0, 2, 1, 3})});
  cases.push_back({"4-d sliced uint8", randomOf({2, 3, 6, 6}, at::kByte).slice(3, 0, 5)});
  cases.push_back({"5-d contiguous", randomOf({2, 3, 2, 3, 4}, at::kFloat)});
  cases.push_back(
      {"5-d channels-last-3d",
       randomOf({1, 4, 2, 3, 3}, at::kDouble).contiguous(at::MemoryFormat::ChannelsLast3d)});
  cases.push_back({"undefined at the end", at::Tensor()});
  return cases;
}

std::vector<at::Tensor> tensorsOf(const std::vector<Case> &cases) {
  std::vector<at::Tensor> tensors;
  for (const Case &c : cases)
    tensors.push_back(c.tensor);
  return tensors;
}

int64_t nbytes(const at::Tensor &t) {
  return t.numel() * static_cast<int64_t>(t.element_size());
}

// ---- Packing ---------------------------------------------------------------

class PackRoundTripTransferTest : public ::testing::TestWithParam<bool> {};

TEST_P(PackRoundTripTransferTest, ValuesDtypesAndSizesSurvive) {
  const bool channelsLast = GetParam();
  const std::vector<Case> cases = mixedInputs();
  const std::vector<at::Tensor> inputs = tensorsOf(cases);
  const std::vector<at::Tensor> results = rdna1::packRoundTripForTests(inputs, channelsLast);
  ASSERT_EQ(results.size(), inputs.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    const at::Tensor &in = inputs[i];
    const at::Tensor &out = results[i];
    if (!in.defined()) {
      EXPECT_FALSE(out.defined());
      continue;
    }
    ASSERT_TRUE(out.defined());
    EXPECT_EQ(out.scalar_type(), in.scalar_type());
    EXPECT_EQ(out.sizes(), in.sizes());
    EXPECT_EQ(out.device(), in.device());
    EXPECT_TRUE(at::equal(out, in));
    EXPECT_TRUE(out.is_non_overlapping_and_dense());
  }
}

TEST_P(PackRoundTripTransferTest, LayoutsFollowTheDirection) {
  const bool channelsLast = GetParam();
  const std::vector<Case> cases = mixedInputs();
  const std::vector<at::Tensor> inputs = tensorsOf(cases);
  const std::vector<at::Tensor> results = rdna1::packRoundTripForTests(inputs, channelsLast);
  ASSERT_EQ(results.size(), inputs.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    const at::Tensor &in = inputs[i];
    const at::Tensor &out = results[i];
    if (!in.defined())
      continue;
    if (channelsLast && in.dim() == 4) {
      EXPECT_TRUE(out.is_contiguous(at::MemoryFormat::ChannelsLast)) << out.strides();
    } else if (channelsLast && in.dim() == 5) {
      EXPECT_TRUE(out.is_contiguous(at::MemoryFormat::ChannelsLast3d)) << out.strides();
    } else if (in.is_non_overlapping_and_dense()) {
      // Dense tensors keep their strides: no layout change on the way.
      if (in.numel() > 0)
        EXPECT_EQ(out.strides(), in.strides());
    } else {
      EXPECT_TRUE(out.is_contiguous()) << out.strides();
    }
  }
}

TEST_P(PackRoundTripTransferTest, ResultsAreFreshTensorsInOneBuffer) {
  const bool channelsLast = GetParam();
  const std::vector<Case> cases = mixedInputs();
  const std::vector<at::Tensor> inputs = tensorsOf(cases);
  std::vector<at::Tensor> before;
  for (const at::Tensor &t : inputs)
    before.push_back(t.defined() ? t.clone() : t);
  const std::vector<at::Tensor> results = rdna1::packRoundTripForTests(inputs, channelsLast);
  ASSERT_EQ(results.size(), inputs.size());

  const at::Tensor *first = nullptr;
  std::vector<std::pair<int64_t, int64_t>> ranges; // byte ranges in the shared buffer
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    const at::Tensor &out = results[i];
    if (!out.defined())
      continue;
    EXPECT_FALSE(out.is_view());
    EXPECT_FALSE(out.storage().is_alias_of(inputs[i].storage()));
    if (first == nullptr)
      first = &out;
    // One buffer, so one copy: every result lives in the first one's storage.
    EXPECT_TRUE(out.storage().is_alias_of(first->storage()));
    if (out.numel() == 0)
      continue; // no data pointer
    const auto *base = static_cast<const char *>(out.storage().data());
    const int64_t begin = static_cast<const char *>(out.data_ptr()) - base;
    // Aligned for any dtype and vector loads.
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(out.data_ptr()) % 64, 0u);
    EXPECT_GE(begin, 0);
    EXPECT_LE(begin + nbytes(out), static_cast<int64_t>(out.storage().nbytes()));
    ranges.push_back({begin, begin + nbytes(out)});
  }
  ASSERT_NE(first, nullptr);
  // No two results share bytes.
  std::sort(ranges.begin(), ranges.end());
  for (size_t k = 1; k < ranges.size(); ++k)
    EXPECT_LE(ranges[k - 1].second, ranges[k].first) << "results " << k - 1 << " and " << k;

  // Writing to the results leaves the inputs as they were, and each other too.
  for (const at::Tensor &out : results)
    if (out.defined())
      out.zero_();
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    if (!inputs[i].defined())
      continue;
    EXPECT_TRUE(at::equal(inputs[i], before[i]));
    EXPECT_TRUE(at::equal(results[i], at::zeros_like(results[i])));
  }
  if (!results[0].defined() || results[0].numel() == 0)
    return;
  results[0].fill_(1);
  for (size_t i = 1; i < results.size(); ++i)
    if (results[i].defined())
      EXPECT_TRUE(at::equal(results[i], at::zeros_like(results[i]))) << cases[i].name;
}

TEST_P(PackRoundTripTransferTest, EdgeLists) {
  const bool channelsLast = GetParam();
  EXPECT_TRUE(rdna1::packRoundTripForTests({}, channelsLast).empty());

  const std::vector<at::Tensor> undefinedOnly =
      rdna1::packRoundTripForTests({at::Tensor(), at::Tensor()}, channelsLast);
  ASSERT_EQ(undefinedOnly.size(), 2u);
  EXPECT_FALSE(undefinedOnly[0].defined());
  EXPECT_FALSE(undefinedOnly[1].defined());

  const at::Tensor empty = at::empty({0, 3}, at::kFloat);
  const std::vector<at::Tensor> emptyOnly = rdna1::packRoundTripForTests({empty}, channelsLast);
  ASSERT_EQ(emptyOnly.size(), 1u);
  EXPECT_EQ(emptyOnly[0].sizes(), empty.sizes());

  const at::Tensor large = at::randn({1 << 20}, at::kFloat);
  const at::Tensor small = at::randn({3}, at::kHalf);
  const std::vector<at::Tensor> both = rdna1::packRoundTripForTests({large, small}, channelsLast);
  EXPECT_TRUE(at::equal(both[0], large));
  EXPECT_TRUE(at::equal(both[1], small));
}

TEST_P(PackRoundTripTransferTest, ResultsDoNotRequireGrad) {
  const at::Tensor x = at::randn({2, 3, 4, 4}).requires_grad_();
  const at::Tensor y = at::randn({5}).requires_grad_();
  const std::vector<at::Tensor> results =
      rdna1::packRoundTripForTests({x.detach(), y.detach()}, GetParam());
  for (const at::Tensor &out : results) {
    EXPECT_FALSE(out.requires_grad());
    EXPECT_FALSE(out.is_view());
    // In-place ops on them are allowed (they are neither views nor leaves needing grad).
    EXPECT_NO_THROW(out.mul_(2));
  }
  EXPECT_TRUE(at::allclose(results[0], x.detach() * 2));
  EXPECT_TRUE(at::allclose(results[1], y.detach() * 2));
}

INSTANTIATE_TEST_SUITE_P(Directions, PackRoundTripTransferTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool> &info) {
                           return info.param ? "ToHostChannelsLast" : "ToDevice";
                         });

// Lazily conjugated and negated tensors are dense, so their bytes are packed as
// they are; the bit that says how to read them must survive too.
// 1x1 and depthwise weights and N x C x 1 x 1 activations are contiguous in
// both layouts; to the host they must go with channels-last's own strides, or
// oneDNN reads them as NCHW and runs the convolution, and the layers after it,
// in NCHW.
TEST(PackTransferTest, AmbiguousLayoutsGoToTheHostAsChannelsLast) {
  const std::vector<at::Tensor> inputs = {at::randn({8, 4, 1, 1}), at::randn({6, 1, 3, 3}),
                                          at::randn({2, 1, 5, 5}), at::randn({3, 2, 1, 1, 1}),
                                          at::randn({4, 3, 2, 2}).narrow(1, 1, 1)};
  const std::vector<at::Tensor> results = rdna1::packRoundTripForTests(inputs, true);
  ASSERT_EQ(results.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE(::testing::PrintToString(inputs[i].sizes()));
    const at::Tensor &out = results[i];
    const bool is3d = out.dim() == 5;
    EXPECT_EQ(out.strides(),
              c10::IntArrayRef(is3d ? c10::get_channels_last_strides_3d(out.sizes())
                                    : c10::get_channels_last_strides_2d(out.sizes())));
    EXPECT_EQ(out.suggest_memory_format(),
              is3d ? at::MemoryFormat::ChannelsLast3d : at::MemoryFormat::ChannelsLast);
    EXPECT_TRUE(at::equal(out, inputs[i]));
  }
}

TEST(PackTransferTest, ConjugateAndNegativeViews) {
  const at::Tensor complex = at::randn({4}, at::kComplexFloat);
  const at::Tensor conj = complex.conj();
  ASSERT_TRUE(conj.is_conj());
  const at::Tensor neg = at::_neg_view(at::randn({4}, at::kFloat));
  ASSERT_TRUE(neg.is_neg());
  for (bool channelsLast : {false, true}) {
    const std::vector<at::Tensor> results = rdna1::packRoundTripForTests({conj, neg}, channelsLast);
    EXPECT_TRUE(at::equal(results[0].resolve_conj(), conj.resolve_conj()));
    EXPECT_TRUE(at::equal(results[1].resolve_neg(), neg.resolve_neg()));
  }
}

// ---- Real batched transfers between host tensors: nothing to move ----------

TEST(BatchedTransferTest, HostTensorsPassThrough) {
  resetCounters();
  const at::Tensor a = at::randn({3, 4});
  const at::Tensor b = at::randn({2, 3, 4, 5});
  const std::vector<at::Tensor> host = rdna1::batchedToHost({a, at::Tensor(), b});
  ASSERT_EQ(host.size(), 3u);
  EXPECT_TRUE(host[0].is_same(a));
  EXPECT_FALSE(host[1].defined());
  EXPECT_TRUE(host[2].is_same(b));
  const std::vector<at::Tensor> device = rdna1::batchedToDevices(
      {a, at::Tensor(), b}, {c10::Device(at::kCPU), c10::Device(at::kCPU), c10::Device(at::kCPU)});
  ASSERT_EQ(device.size(), 3u);
  EXPECT_TRUE(device[0].is_same(a));
  EXPECT_FALSE(device[1].defined());
  EXPECT_TRUE(device[2].is_same(b));
  EXPECT_EQ(counter("to_host_copies"), 0);
  EXPECT_EQ(counter("to_device_copies"), 0);
  EXPECT_THROW(rdna1::batchedToDevices({a, b}, {c10::Device(at::kCPU)}), c10::Error);
}

// On the stand-in device the way to the device really copies: large and small
// tensors of several dtypes and layouts, packed into one buffer, arrive whole,
// in separate storage, in one transfer.
TEST(BatchedTransferTest, StandInDeviceCopiesMixedTensorsInOneTransfer) {
  resetCounters();
  rdna1::setStandInDevice(true);
  const std::vector<at::Tensor> host = {
      at::randn({3}),
      at::randn({2, 17, 181, 181}).contiguous(at::MemoryFormat::ChannelsLast),      // 8.9 MB
      at::randint(0, 100, {5, 7}, at::kLong), at::randn({1311, 1001}, at::kDouble), // 10.5 MB
      at::randn({4, 4}, at::kHalf)};
  const std::vector<c10::Device> devices(host.size(), c10::Device(at::kCPU));
  const std::vector<at::Tensor> moved = rdna1::batchedToDevices(host, devices);
  rdna1::setStandInDevice(false);
  ASSERT_EQ(moved.size(), host.size());
  for (size_t i = 0; i < host.size(); ++i) {
    EXPECT_TRUE(at::equal(moved[i], host[i])) << i;
    EXPECT_EQ(moved[i].scalar_type(), host[i].scalar_type()) << i;
    EXPECT_NE(moved[i].data_ptr(), host[i].data_ptr()) << i;
  }
  EXPECT_EQ(counter("to_device_copies"), 1);
}

// ---- Host parameter cache, over host tensors with a counting copier ---------

class HostParamCacheTest : public ::testing::Test {
protected:
  std::mutex copiesMutex;
  std::vector<size_t> batches; // tensors per copier call
  // Copies of everything (host tensors included), cloned, counting the batches.
  rdna1::HostParamCache cache{[this](at::TensorList tensors) {
                                std::lock_guard<std::mutex> lock(copiesMutex);
                                batches.push_back(tensors.size());
                                std::vector<at::Tensor> out;
                                for (const at::Tensor &t : tensors)
                                  out.push_back(t.clone());
                                return out;
                              },
                              [](const at::Tensor &) { return true; }};

  size_t copierCalls() {
    std::lock_guard<std::mutex> lock(copiesMutex);
    return batches.size();
  }
  size_t lastBatch() {
    std::lock_guard<std::mutex> lock(copiesMutex);
    return batches.empty() ? 0 : batches.back();
  }
};

TEST_F(HostParamCacheTest, MissesAreCopiedInOneBatchAndThenServedFromTheCache) {
  const at::Tensor a = at::randn({3, 4});
  const at::Tensor b = at::randn({2, 3, 4, 5});
  const at::Tensor c = at::arange(7);
  const std::vector<at::Tensor> first = cache.lookup({a, at::Tensor(), b, c});
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(copierCalls(), 1u);
  EXPECT_EQ(lastBatch(), 3u);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_FALSE(first[1].defined());
  EXPECT_TRUE(at::equal(first[0], a));
  EXPECT_TRUE(at::equal(first[2], b));
  EXPECT_TRUE(at::equal(first[3], c));
  EXPECT_FALSE(first[0].is_same(a)); // the copier's copy, not the param

  const std::vector<at::Tensor> second = cache.lookup({a, at::Tensor(), b, c});
  EXPECT_EQ(copierCalls(), 1u);
  EXPECT_TRUE(second[0].is_same(first[0]));
  EXPECT_FALSE(second[1].defined());
  EXPECT_TRUE(second[2].is_same(first[2]));
  EXPECT_TRUE(second[3].is_same(first[3]));

  // A new param among cached ones: only it is copied.
  const at::Tensor d = at::randn({5});
  const std::vector<at::Tensor> third = cache.lookup({b, d, a});
  EXPECT_EQ(copierCalls(), 2u);
  EXPECT_EQ(lastBatch(), 1u);
  EXPECT_TRUE(third[0].is_same(first[2]));
  EXPECT_TRUE(at::equal(third[1], d));
  EXPECT_TRUE(third[2].is_same(first[0]));
  EXPECT_EQ(cache.size(), 4u);

  // The same param twice in one call is fine too.
  const std::vector<at::Tensor> twice = cache.lookup({d, d});
  EXPECT_EQ(copierCalls(), 2u);
  EXPECT_TRUE(twice[0].is_same(third[1]));
  EXPECT_TRUE(twice[1].is_same(third[1]));
}

TEST_F(HostParamCacheTest, EmptyAndUndefinedOnlyLookupsCopyNothing) {
  EXPECT_TRUE(cache.lookup({}).empty());
  const std::vector<at::Tensor> out = cache.lookup({at::Tensor()});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].defined());
  EXPECT_EQ(copierCalls(), 0u);
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(HostParamCacheTest, TensorsThatNeedNoCopyPassThrough) {
  rdna1::HostParamCache onlyFloats(
      [this](at::TensorList tensors) {
        batches.push_back(tensors.size());
        std::vector<at::Tensor> out;
        for (const at::Tensor &t : tensors)
          out.push_back(t.clone());
        return out;
      },
      [](const at::Tensor &t) { return t.is_floating_point(); });
  const at::Tensor floats = at::randn({3});
  const at::Tensor ints = at::arange(3);
  const std::vector<at::Tensor> out = onlyFloats.lookup({ints, floats});
  EXPECT_TRUE(out[0].is_same(ints));
  EXPECT_FALSE(out[1].is_same(floats));
  EXPECT_TRUE(at::equal(out[1], floats));
  EXPECT_EQ(batches, std::vector<size_t>{1});
  EXPECT_EQ(onlyFloats.size(), 1u);
}

TEST_F(HostParamCacheTest, CopiesAreDetached) {
  const at::Tensor p = at::randn({4}).requires_grad_();
  const at::Tensor q = (at::randn({4}).requires_grad_() * 2); // not a leaf: has a graph
  const std::vector<at::Tensor> out = cache.lookup({p, q});
  for (const at::Tensor &t : out) {
    EXPECT_FALSE(t.requires_grad());
    EXPECT_EQ(t.grad_fn(), nullptr);
  }
  EXPECT_TRUE(at::equal(out[0], p.detach()));
  EXPECT_TRUE(at::equal(out[1], q.detach()));
}

TEST_F(HostParamCacheTest, InPlaceUpdateInvalidatesOnlyThatEntry) {
  const at::Tensor p = at::randn({3, 3}).requires_grad_();
  const at::Tensor q = at::randn({4}).requires_grad_();
  const std::vector<at::Tensor> first = cache.lookup({p, q});
  const at::Tensor oldP = p.detach().clone();
  {
    at::NoGradGuard noGrad; // an optimizer step
    p.add_(1);
  }
  const std::vector<at::Tensor> second = cache.lookup({p, q});
  EXPECT_EQ(copierCalls(), 2u);
  EXPECT_EQ(lastBatch(), 1u);
  EXPECT_TRUE(at::equal(second[0], p.detach()));
  EXPECT_FALSE(at::equal(second[0], oldP));
  EXPECT_TRUE(second[1].is_same(first[1]));
  EXPECT_TRUE(at::equal(first[0], oldP)); // the old copy was not written to
  EXPECT_EQ(cache.size(), 2u);

  // Through a view (shared version counter) too.
  {
    at::NoGradGuard noGrad;
    q.view({2, 2}).mul_(3);
  }
  const std::vector<at::Tensor> third = cache.lookup({p, q});
  EXPECT_EQ(copierCalls(), 3u);
  EXPECT_EQ(lastBatch(), 1u);
  EXPECT_TRUE(third[0].is_same(second[0]));
  EXPECT_TRUE(at::equal(third[1], q.detach()));

  // And through detach(), which shares the version counter as well.
  p.detach().zero_();
  const std::vector<at::Tensor> fourth = cache.lookup({p});
  EXPECT_EQ(copierCalls(), 4u);
  EXPECT_TRUE(at::equal(fourth[0], at::zeros({3, 3})));
}

TEST_F(HostParamCacheTest, SetAndSetDataInvalidate) {
  const at::Tensor p = at::randn({2, 5});
  cache.lookup({p});
  const at::Tensor other = at::randn({2, 5});
  {
    at::NoGradGuard noGrad;
    p.set_(other);
  }
  const std::vector<at::Tensor> afterSet = cache.lookup({p});
  EXPECT_EQ(copierCalls(), 2u);
  EXPECT_TRUE(at::equal(afterSet[0], other));

  // Python's `p.data = t`: new data, the version counter kept.
  at::Tensor q = at::randn({3});
  cache.lookup({q});
  const int64_t version = q._version();
  const at::Tensor replacement = at::randn({3});
  q.set_data(replacement);
  ASSERT_EQ(q._version(), version);
  const std::vector<at::Tensor> afterSetData = cache.lookup({q});
  EXPECT_EQ(copierCalls(), 4u);
  EXPECT_TRUE(at::equal(afterSetData[0], replacement));
}

// model.to(dtype) on a device: new data that may land at the old address.
TEST_F(HostParamCacheTest, SameAddressWithAnotherDtypeOrShapeInvalidates) {
  at::Tensor p = at::randn({4, 6}).to(at::kHalf);
  cache.lookup({p});
  p.set_data(p.view(at::kBFloat16)); // same data pointer and version, another dtype
  const std::vector<at::Tensor> asBFloat16 = cache.lookup({p});
  EXPECT_EQ(copierCalls(), 2u);
  EXPECT_EQ(asBFloat16[0].scalar_type(), at::kBFloat16);
  p.set_data(p.view({6, 4})); // and another shape
  const std::vector<at::Tensor> reshaped = cache.lookup({p});
  EXPECT_EQ(copierCalls(), 3u);
  EXPECT_EQ(reshaped[0].sizes(), p.sizes());
}

TEST_F(HostParamCacheTest, DestroyedParamsAreDroppedAndNeverServedToNewTensors) {
  at::Tensor a = at::randn({3});
  at::Tensor b = at::randn({3});
  cache.lookup({a, b});
  EXPECT_EQ(cache.size(), 2u);
  a.reset();
  const at::Tensor c = at::randn({3});
  cache.lookup({c}); // a miss drops the expired entries
  EXPECT_EQ(cache.size(), 2u);
  b.reset();
  const at::Tensor d = at::randn({3});
  cache.lookup({d});
  EXPECT_EQ(cache.size(), 2u); // c and d
  cache.lookup({c, d});
  EXPECT_EQ(copierCalls(), 3u);

  // Tensors made and destroyed one after another may reuse each other's
  // addresses; none may get another's copy.
  for (int i = 0; i < 100; ++i) {
    const at::Tensor t = at::full({4}, static_cast<double>(i));
    const at::Tensor host = cache.lookup({t})[0];
    ASSERT_TRUE(at::equal(host, t)) << "iteration " << i;
  }
  EXPECT_EQ(copierCalls(), 103u);
  EXPECT_LE(cache.size(), 3u);
}

TEST_F(HostParamCacheTest, ClearForgetsEverything) {
  const at::Tensor p = at::randn({3});
  const at::Tensor first = cache.lookup({p})[0];
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
  const at::Tensor second = cache.lookup({p})[0];
  EXPECT_EQ(copierCalls(), 2u);
  EXPECT_FALSE(second.is_same(first));
  EXPECT_TRUE(at::equal(second, p));
}

TEST_F(HostParamCacheTest, ConcurrentLookupsAreCorrect) {
  std::vector<at::Tensor> shared;
  for (int i = 0; i < 16; ++i)
    shared.push_back(at::full({8, 8}, static_cast<double>(i)));
  constexpr int kThreads = 8;
  constexpr int kIterations = 200;
  std::atomic<int> wrong{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        // Each thread also updates a param of its own in place.
        const at::Tensor own = at::full({4}, static_cast<double>(t));
        for (int it = 0; it < kIterations; ++it) {
          std::vector<at::Tensor> params = shared;
          params.push_back(own);
          const std::vector<at::Tensor> host = cache.lookup(params);
          for (size_t k = 0; k < shared.size(); ++k)
            if (!at::equal(host[k], shared[k]))
              ++wrong;
          if (!at::equal(host.back(), own))
            ++wrong;
          own.add_(1);
        }
      } catch (...) {
        ++errors;
      }
    });
  }
  for (std::thread &thread : threads)
    thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  // Shared params were copied once, by whichever thread came first.
  std::lock_guard<std::mutex> lock(copiesMutex);
  size_t copied = 0;
  for (size_t batch : batches)
    copied += batch;
  EXPECT_EQ(copied, shared.size() + kThreads * kIterations);
}

// Parameters made (or moved to the GPU) under inference mode are inference
// tensors, which have no version counter.
// They are copied on every lookup instead of cached.
TEST_F(HostParamCacheTest, InferenceTensorsAreCopiedEveryTime) {
  at::Tensor p;
  {
    c10::InferenceMode inference;
    p = at::randn({3});
  }
  ASSERT_TRUE(p.is_inference());
  std::vector<at::Tensor> out;
  {
    c10::InferenceMode inference;
    ASSERT_NO_THROW(out = cache.lookup({p}));
  }
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(at::equal(out[0], p));
  {
    c10::InferenceMode inference;
    p.add_(1);
    ASSERT_NO_THROW(out = cache.lookup({p}));
  }
  EXPECT_TRUE(at::equal(out[0], p));
}

// `p.data` is a tensor with a version counter of its own: writes through it
// (old-style optimizers, EMA or target-network updates, weight init) keep p's
// version and data pointer, so the cache cannot see them.
// Documented limitation: the stale copy is served until clear().
TEST_F(HostParamCacheTest, WritesThroughDataNeedClear) {
  const at::Tensor p = at::randn({3}).requires_grad_();
  cache.lookup({p});
  p.variable_data().add_(1);
  EXPECT_FALSE(at::equal(cache.lookup({p})[0], p.detach()));
  cache.clear();
  EXPECT_TRUE(at::equal(cache.lookup({p})[0], p.detach()));
}

// ---- Boundary ops through the dispatcher, on the host ------------------------

TEST(BoundaryOpsTest, ToHostPassesHostTensorsThroughWithGradients) {
  const at::Tensor x = at::randn({2, 3, 4, 4}).requires_grad_();
  const at::Tensor y = at::randn({5}, at::kDouble);
  const std::vector<at::Tensor> out = toHost({x, at::Tensor(), y});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(at::equal(out[0], x));
  EXPECT_FALSE(out[1].defined());
  EXPECT_TRUE(at::equal(out[2], y));
  EXPECT_TRUE(out[0].requires_grad());
  out[0].sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_TRUE(at::equal(x.grad(), at::ones_like(x)));
}

TEST(BoundaryOpsTest, ToDevicePassesHostTensorsThroughWithGradients) {
  const at::Tensor like = at::empty({0});
  const at::Tensor x = at::randn({3, 4}).requires_grad_();
  const at::Tensor y = at::randint(0, 10, {4}, at::kLong);
  const std::vector<at::Tensor> out = toDevice({x, y, at::Tensor()}, like);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(at::equal(out[0], x));
  EXPECT_TRUE(at::equal(out[1], y));
  EXPECT_FALSE(out[2].defined());
  (out[0] * 3).sum().backward();
  EXPECT_TRUE(at::equal(x.grad(), at::full_like(x, 3)));
}

TEST(BoundaryOpsTest, HostParamsPassHostParamsThroughWithGradients) {
  resetCounters();
  const at::Tensor w = at::randn({4, 3, 3, 3}).requires_grad_();
  const at::Tensor b = at::randn({4}).requires_grad_();
  const std::vector<at::Tensor> out = hostParams({w, b, at::Tensor()});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(at::equal(out[0], w));
  EXPECT_TRUE(at::equal(out[1], b));
  EXPECT_FALSE(out[2].defined());
  (out[0].sum() + out[1].sum()).backward();
  EXPECT_TRUE(at::equal(w.grad(), at::ones_like(w)));
  EXPECT_TRUE(at::equal(b.grad(), at::ones_like(b)));
  // Nothing crossed a bus, nothing was cached.
  EXPECT_EQ(counter("param_copies"), 0);
  EXPECT_EQ(counter("param_hits"), 0);
}

TEST(BoundaryOpsTest, HostParamHandlesNone) {
  EXPECT_FALSE(hostParam(c10::nullopt).has_value());
  EXPECT_FALSE(hostParam(at::Tensor()).has_value());
  const at::Tensor b = at::randn({4}).requires_grad_();
  const c10::optional<at::Tensor> out = hostParam(b);
  ASSERT_TRUE(out.has_value());
  EXPECT_TRUE(at::equal(*out, b));
  (*out * 2).sum().backward();
  EXPECT_TRUE(at::equal(b.grad(), at::full_like(b, 2)));
}

TEST(BoundaryOpsTest, CopyBackCopiesOnlyDifferentTensors) {
  const at::Tensor runningMean = at::zeros({4});
  const at::Tensor runningVar = at::ones({4});
  const at::Tensor newMean = at::randn({4});
  const int64_t meanVersion = runningMean._version();
  const int64_t varVersion = runningVar._version();
  copyBack({runningMean, runningVar}, {newMean, runningVar});
  EXPECT_TRUE(at::equal(runningMean, newMean));
  EXPECT_FALSE(runningMean.is_same(newMean));
  EXPECT_GT(runningMean._version(), meanVersion);
  EXPECT_EQ(runningVar._version(), varVersion); // same tensor: skipped
  EXPECT_TRUE(at::equal(runningVar, at::ones({4})));

  // Into a leaf that requires grad (a parameter), with grad mode on.
  const at::Tensor param = at::zeros({3}).requires_grad_();
  const at::Tensor update = at::randn({3});
  copyBack({param}, {update});
  EXPECT_TRUE(at::equal(param.detach(), update));

  EXPECT_THROW(copyBack({runningMean}, {newMean, runningVar}), c10::Error);
}

TEST(BoundaryOpsTest, CountersCountHostConvolutions) {
  resetCounters();
  const auto zeroed = counters();
  for (const char *name :
       {"to_host_copies", "to_host_bytes", "to_device_copies", "to_device_bytes", "param_copies",
        "param_bytes", "param_hits", "host_convolutions", "host_convolution_ns"}) {
    ASSERT_TRUE(zeroed.contains(name)) << name;
    EXPECT_EQ(zeroed.at(name), 0) << name;
  }
  const at::Tensor input = at::randn({1, 2, 5, 5});
  const at::Tensor weight = at::randn({3, 2, 3, 3});
  const at::Tensor out = conv(input, weight, c10::nullopt);
  EXPECT_TRUE(at::allclose(out, at::conv2d(input, weight, {}, 1, 1), 1e-4, 1e-5));
  EXPECT_EQ(counter("host_convolutions"), 1);
  EXPECT_GT(counter("host_convolution_ns"), 0);
  toHost({input});
  toDevice({out}, input);
  EXPECT_EQ(counter("to_host_copies"), 0); // host tensors: no transfer
  EXPECT_EQ(counter("to_device_copies"), 0);
  resetCounters();
  EXPECT_EQ(counter("host_convolutions"), 0);
  EXPECT_EQ(counter("host_convolution_ns"), 0);
}

// A host convolution's backward moves its gradient alone, one DMA each way:
// forward saved the host copies of input and weight, which must not cross again
// (on the stand-in device every tensor looks movable, so a slip would show).
TEST(BoundaryOpsTest, HostConvolutionBackwardMovesOnlyTheGradient) {
  const at::Tensor input = at::randn({2, 3, 8, 8}, at::kDouble).requires_grad_();
  const at::Tensor weight = at::randn({4, 3, 3, 3}, at::kDouble).requires_grad_();
  rdna1::setStandInDevice(true);
  const at::Tensor out = conv(input, weight, c10::nullopt);
  resetCounters();
  out.backward(at::ones_like(out));
  rdna1::setStandInDevice(false);
  EXPECT_EQ(counter("to_host_copies"), 1);
  EXPECT_EQ(counter("to_host_bytes"), out.numel() * 8); // 512 doubles: 64-byte aligned
  EXPECT_EQ(counter("to_device_copies"), 1);            // both gradients in one DMA
  const at::Tensor x = input.detach().requires_grad_();
  const at::Tensor w = weight.detach().requires_grad_();
  at::conv2d(x, w, {}, 1, 1).backward(at::ones_like(out));
  EXPECT_TRUE(at::allclose(input.grad(), x.grad()));
  EXPECT_TRUE(at::allclose(weight.grad(), w.grad()));
}

TEST(BoundaryOpsTest, WorkUnderInferenceMode) {
  const at::Tensor normal = at::randn({2, 3}).requires_grad_();
  c10::InferenceMode inference;
  const at::Tensor x = at::randn({2, 3, 4, 4});
  ASSERT_TRUE(x.is_inference());
  const std::vector<at::Tensor> host = toHost({x, normal, at::Tensor()});
  EXPECT_TRUE(at::equal(host[0], x));
  EXPECT_TRUE(at::equal(host[1], normal));
  EXPECT_FALSE(host[2].defined());
  const std::vector<at::Tensor> back = toDevice({x, at::Tensor()}, x);
  EXPECT_TRUE(at::equal(back[0], x));
  EXPECT_FALSE(back[1].defined());
  const std::vector<at::Tensor> params = hostParams({x, normal});
  EXPECT_TRUE(at::equal(params[0], x));
  EXPECT_TRUE(at::equal(params[1], normal));
  EXPECT_FALSE(hostParam(c10::nullopt).has_value());
  EXPECT_TRUE(at::equal(*hostParam(x), x));
  const at::Tensor target = at::zeros({2, 3});
  copyBack({target}, {x[0][0].narrow(1, 0, 3).narrow(0, 0, 2)});
  EXPECT_TRUE(at::equal(target, x[0][0].narrow(1, 0, 3).narrow(0, 0, 2)));
  const at::Tensor weight = at::randn({2, 3, 3, 3});
  const at::Tensor out = conv(x, weight, c10::nullopt);
  EXPECT_TRUE(at::allclose(out, at::conv2d(x, weight, {}, 1, 1), 1e-4, 1e-5));
}

} // namespace
