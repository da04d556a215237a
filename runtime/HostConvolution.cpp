#include "HostConvolution.h"

#include "Counters.h"

#include <ATen/ATen.h>

#include <chrono>

namespace rdna1 {
namespace {

std::vector<int64_t> expandParam(c10::IntArrayRef values, int64_t spatialDims, const char *name) {
  if (static_cast<int64_t>(values.size()) == spatialDims)
    return values.vec();
  TORCH_CHECK(values.size() == 1, "rdna1::conv: expected ", name, " to have 1 or ", spatialDims,
              " elements, got ", values.size());
  return std::vector<int64_t>(spatialDims, values[0]);
}

// Older CPU kernels lack half precision and are slow in bfloat16, so reduced
// precision is computed in float32 and cast back (also more accurate).
c10::ScalarType hostComputeType(c10::ScalarType type) {
  return (type == at::kHalf || type == at::kBFloat16) ? at::kFloat : type;
}

at::Tensor castTo(const at::Tensor &t, c10::ScalarType type) {
  return t.defined() ? t.to(type) : t;
}

void checkSameDtypes(const at::Tensor &input, const at::Tensor &weight,
                     const c10::optional<at::Tensor> &bias) {
  TORCH_CHECK(input.scalar_type() == weight.scalar_type(), "rdna1::conv: input type (",
              input.scalar_type(), ") and weight type (", weight.scalar_type(),
              ") should be the same");
  TORCH_CHECK(!bias || !bias->defined() || bias->scalar_type() == input.scalar_type(),
              "rdna1::conv: input type (", input.scalar_type(), ") and bias type (",
              bias->scalar_type(), ") should be the same");
}

// ATen's convolution wants a batch dimension; conv1d/2d/3d also accept inputs without one.
bool isUnbatched(const at::Tensor &input, const at::Tensor &weight) {
  return input.dim() == weight.dim() - 1;
}

} // namespace

ConvolutionArgs makeConvolutionArgs(int64_t weightDim, c10::IntArrayRef stride,
                                    c10::IntArrayRef padding, c10::IntArrayRef dilation,
                                    bool transposed, c10::IntArrayRef outputPadding,
                                    int64_t groups) {
  const int64_t spatial = weightDim - 2;
  TORCH_CHECK(spatial >= 1, "rdna1::conv: weight must have at least 3 dimensions, got ", weightDim);
  ConvolutionArgs args;
  args.stride = expandParam(stride, spatial, "stride");
  args.padding = expandParam(padding, spatial, "padding");
  args.dilation = expandParam(dilation, spatial, "dilation");
  args.transposed = transposed;
  args.outputPadding = outputPadding.empty()
                           ? std::vector<int64_t>(spatial, 0)
                           : expandParam(outputPadding, spatial, "output_padding");
  args.groups = groups;
  return args;
}

at::Tensor hostConvolution(const at::Tensor &input, const at::Tensor &weight,
                           const c10::optional<at::Tensor> &bias, const ConvolutionArgs &args) {
  const auto start = std::chrono::steady_clock::now();
  checkSameDtypes(input, weight, bias);
  const bool unbatched = isUnbatched(input, weight);
  const auto type = input.scalar_type();
  const auto compute = hostComputeType(type);
  c10::optional<at::Tensor> hostBias;
  if (bias && bias->defined())
    hostBias = bias->to(compute);
  // libtorch 1.13's CPU convolution fails on an empty input with a channels-last
  // weight (as the host weight cache holds them): use a contiguous one there.
  const at::Tensor hostWeight = input.numel() == 0 ? weight.contiguous() : weight;
  at::Tensor out = at::convolution(unbatched ? input.unsqueeze(0).to(compute) : input.to(compute),
                                   hostWeight.to(compute), hostBias, args.stride, args.padding,
                                   args.dilation, args.transposed, args.outputPadding, args.groups);
  if (unbatched)
    out = out.squeeze(0);
  out = out.to(type);
  auto &counters = Counters::get();
  counters.hostConvolutions += 1;
  counters.hostConvolutionNanos +=
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count();
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor>
hostConvolutionBackward(const at::Tensor &gradOutput, const at::Tensor &input,
                        const at::Tensor &weight, c10::OptionalIntArrayRef biasSizes,
                        const ConvolutionArgs &args, std::array<bool, 3> outputMask) {
  const bool unbatched = isUnbatched(input, weight);
  const auto compute = hostComputeType(input.scalar_type());
  at::Tensor gradOut = gradOutput.to(compute);
  at::Tensor in = input.to(compute);
  if (unbatched) {
    gradOut = gradOut.unsqueeze(0);
    in = in.unsqueeze(0);
  }
  const at::Tensor hostWeight = in.numel() == 0 ? weight.contiguous() : weight; // as forward
  auto [gradInput, gradWeight, gradBias] = at::convolution_backward(
      gradOut, in, hostWeight.to(compute), biasSizes, args.stride, args.padding, args.dilation,
      args.transposed, args.outputPadding, args.groups, outputMask);
  if (unbatched && gradInput.defined())
    gradInput = gradInput.squeeze(0);
  return {castTo(gradInput, input.scalar_type()), castTo(gradWeight, weight.scalar_type()),
          castTo(gradBias, weight.scalar_type())};
}

} // namespace rdna1
