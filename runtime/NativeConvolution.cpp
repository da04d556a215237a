#include "NativeConvolution.h"

#include <ATen/ATen.h>
#include <c10/util/accumulate.h>
#include <torch/autograd.h>

#include <algorithm>
#include <vector>

namespace rdna1 {
namespace {

using Sizes = std::vector<int64_t>;

bool allEqual(c10::IntArrayRef values, int64_t value) {
  return std::all_of(values.begin(), values.end(), [value](int64_t v) { return v == value; });
}

Sizes concat(Sizes head, c10::IntArrayRef tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

int64_t convolvedExtent(int64_t in, int64_t kernel, int64_t stride, int64_t padding,
                        int64_t dilation) {
  return (in + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1;
}

int64_t transposedExtent(int64_t in, int64_t kernel, int64_t stride, int64_t padding,
                         int64_t dilation, int64_t outputPadding) {
  return (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + outputPadding + 1;
}

void checkHyperParameters(const ConvolutionArgs &args, int64_t spatial) {
  for (const Sizes *list : {&args.stride, &args.padding, &args.dilation, &args.outputPadding})
    TORCH_CHECK(static_cast<int64_t>(list->size()) == spatial, "rdna1::conv: expected ", spatial,
                " values per stride, padding, dilation and output padding, got ", list->size());
  TORCH_CHECK(args.groups > 0, "rdna1::conv: groups must be positive, got ", args.groups);
  for (int64_t i = 0; i < spatial; ++i) {
    TORCH_CHECK(args.stride[i] > 0, "rdna1::conv: stride must be positive, got ",
                c10::IntArrayRef(args.stride));
    TORCH_CHECK(args.dilation[i] > 0, "rdna1::conv: dilation must be positive, got ",
                c10::IntArrayRef(args.dilation));
    TORCH_CHECK(args.padding[i] >= 0, "rdna1::conv: padding must be non-negative, got ",
                c10::IntArrayRef(args.padding));
    TORCH_CHECK(!args.transposed ||
                    (args.outputPadding[i] >= 0 &&
                     args.outputPadding[i] < std::max(args.stride[i], args.dilation[i])),
                "rdna1::conv: output padding must be non-negative and smaller than either stride "
                "or dilation, got output_padding=",
                c10::IntArrayRef(args.outputPadding), " stride=", c10::IntArrayRef(args.stride),
                " dilation=", c10::IntArrayRef(args.dilation));
  }
}

void checkChannels(const at::Tensor &input, const at::Tensor &weight,
                   const c10::optional<at::Tensor> &bias, const ConvolutionArgs &args) {
  const int64_t channels = input.size(input.dim() - weight.dim() + 1);
  const int64_t groups = args.groups;
  TORCH_CHECK(weight.size(0) % groups == 0, "rdna1::conv: weight dimension 0 (", weight.size(0),
              ") must be divisible by groups (", groups, ")");
  const int64_t expected = args.transposed ? weight.size(0) : weight.size(1) * groups;
  TORCH_CHECK(channels == expected, "rdna1::conv: input has ", channels,
              " channels, but the weight ", weight.sizes(), " with groups=", groups, " expects ",
              expected);
  const int64_t outChannels = args.transposed ? weight.size(1) * groups : weight.size(0);
  TORCH_CHECK(!bias || !bias->defined() || (bias->dim() == 1 && bias->numel() == outChannels),
              "rdna1::conv: expected a bias of ", outChannels, " elements, got shape ",
              bias->sizes());
}

void checkExtents(const at::Tensor &input, const at::Tensor &weight, const ConvolutionArgs &args) {
  const int64_t spatial = weight.dim() - 2;
  const int64_t first = input.dim() - spatial;
  for (int64_t i = 0; i < spatial; ++i) {
    const int64_t in = input.size(first + i), kernel = weight.size(i + 2);
    const int64_t extent = args.transposed
                               ? transposedExtent(in, kernel, args.stride[i], args.padding[i],
                                                  args.dilation[i], args.outputPadding[i])
                               : in + 2 * args.padding[i] - args.dilation[i] * (kernel - 1);
    TORCH_CHECK(extent >= 1, "rdna1::conv: input ", input.sizes(), " is too small for the weight ",
                weight.sizes(), " with padding ", c10::IntArrayRef(args.padding), " and dilation ",
                c10::IntArrayRef(args.dilation));
  }
}

void checkArguments(const at::Tensor &input, const at::Tensor &weight,
                    const c10::optional<at::Tensor> &bias, const ConvolutionArgs &args) {
  TORCH_CHECK(weight.dim() >= 3 && weight.dim() <= 5,
              "rdna1::conv: expected a 3-d, 4-d or 5-d weight, got ", weight.dim(), "-d");
  TORCH_CHECK(input.dim() == weight.dim() || input.dim() == weight.dim() - 1,
              "rdna1::conv: expected a ", weight.dim() - 1, "-d or ", weight.dim(),
              "-d input for a ", weight.dim(), "-d weight, got ", input.dim(), "-d");
  TORCH_CHECK(input.scalar_type() == weight.scalar_type(), "rdna1::conv: input type (",
              input.scalar_type(), ") and weight type (", weight.scalar_type(),
              ") should be the same");
  TORCH_CHECK(input.device() == weight.device(), "rdna1::conv: input (", input.device(),
              ") and weight (", weight.device(), ") must be on the same device");
  if (bias && bias->defined())
    TORCH_CHECK(bias->scalar_type() == input.scalar_type() && bias->device() == input.device(),
                "rdna1::conv: bias (", bias->scalar_type(), ", ", bias->device(),
                ") must match the input (", input.scalar_type(), ", ", input.device(), ")");
  checkHyperParameters(args, weight.dim() - 2);
  checkChannels(input, weight, bias, args);
  checkExtents(input, weight, args);
}

// Older CPU kernels (matmul, im2col) lack half precision, so reduced precision
// is computed in float32 there; on accelerators the dtype is kept.
c10::ScalarType computeType(const at::Tensor &input) {
  const auto type = input.scalar_type();
  const bool reduced = type == at::kHalf || type == at::kBFloat16;
  return reduced && input.is_cpu() ? at::kFloat : type;
}

// t in `type`, without a call through the dispatcher when it is already:
// small batches are bound by the host's time per call.
at::Tensor asType(const at::Tensor &t, c10::ScalarType type) {
  return t.scalar_type() == type ? t : t.to(type);
}

// lhs [G, M, K] times, for each batch element, the group's rows [K, L] of
// rhs [N, G * K, L]: [N, G * M, L] in one bmm over batch and groups. A loop
// over groups (as ATen's native grouped convolution does) is an order of
// magnitude slower on GPUs; at::matmul, when gradients are needed, folds a 2-d
// operand into the other with transposed copies of the (large) columns.
at::Tensor sharedLhsBmm(const at::Tensor &lhs, const at::Tensor &rhs) {
  const int64_t groups = lhs.size(0), m = lhs.size(1), k = lhs.size(2);
  const int64_t n = rhs.size(0), points = rhs.size(2);
  // One group: the weight broadcasts over the batch without a copy.
  if (groups == 1)
    return at::bmm(lhs.expand({n, m, k}), rhs);
  const at::Tensor batchedLhs =
      lhs.unsqueeze(0).expand({n, groups, m, k}).reshape({n * groups, m, k});
  return at::bmm(batchedLhs, rhs.reshape({n * groups, k, points})).reshape({n, groups * m, points});
}

// Images whose patches hold at least this many elements (16 MiB of float32)
// get their weight gradient image by image (see sharedLhsGradient): copying
// them then costs about what a GEMM launch does.
constexpr int64_t kPatchElementsForPerImageWeightGradient = int64_t{1} << 22;

// The gradient of sharedLhsBmm's lhs [G, M, K], given the output's gradient
// [N, G * M, L] and rhs [N, G * K, L]: products of [M, L] by [L, K], summed
// over the batch. A batched GEMM over the batch would spread these (M and K
// small, L a whole image) over a handful of thread blocks (measured: 2.2x the
// whole UNet training step of the original), and so do single GEMMs of a
// small K (measured: a RegNet stem's weight gradient image by image added
// 2-3 ms to its b8 step). So
//  - large patches, one group: one GEMM per image, accumulated, each split
//    along its L by the GEMM itself; rhs (the columns) is read in place;
//  - otherwise one product per group over all images' points,
//    [M, N * L] by [N * L, K], which copies rhs into that layout.
at::Tensor sharedLhsGradient(const at::Tensor &grad, const at::Tensor &rhs, int64_t groups,
                             int64_t m) {
  const int64_t n = rhs.size(0), k = rhs.size(1) / groups, points = rhs.size(2);
  if (groups == 1 && n > 0 && k * points >= kPatchElementsForPerImageWeightGradient) {
    const at::Tensor g = grad.reshape({n, m, points});
    at::Tensor sum = at::mm(g[0], rhs[0].t());
    for (int64_t i = 1; i < n; ++i)
      sum = at::addmm(sum, g[i], rhs[i].t());
    return sum.unsqueeze(0);
  }
  const at::Tensor g =
      grad.reshape({n, groups, m, points}).permute({1, 2, 0, 3}).reshape({groups, m, n * points});
  const at::Tensor r =
      rhs.reshape({n, groups, k, points}).permute({1, 0, 3, 2}).reshape({groups, n * points, k});
  return groups == 1 ? at::mm(g[0], r[0]).unsqueeze(0) : at::bmm(g, r);
}

// sharedLhsBmm with sharedLhsGradient as the backward for lhs (the weight).
class SharedLhsBmmFunction : public torch::autograd::Function<SharedLhsBmmFunction> {
public:
  static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &lhs,
                            const at::Tensor &rhs) {
    ctx->save_for_backward({lhs, rhs});
    at::AutoDispatchBelowADInplaceOrView belowAutograd;
    return sharedLhsBmm(lhs, rhs);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &lhs = saved[0], &rhs = saved[1], &grad = grads[0];
    const int64_t groups = lhs.size(0), m = lhs.size(1);
    at::Tensor gradLhs, gradRhs;
    if (ctx->needs_input_grad(0))
      gradLhs = sharedLhsGradient(grad, rhs, groups, m);
    if (ctx->needs_input_grad(1))
      gradRhs = apply(lhs.transpose(1, 2), grad);
    return {gradLhs, gradRhs};
  }
};

// Whether autograd will record an op on these operands: a custom Function
// costs its context and node on every call, which inference need not pay.
bool recordsGradient(const at::Tensor &a, const at::Tensor &b) {
  return at::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad());
}

at::Tensor groupedBmm(const at::Tensor &lhs, const at::Tensor &rhs) {
  return recordsGradient(lhs, rhs) ? SharedLhsBmmFunction::apply(lhs, rhs) : sharedLhsBmm(lhs, rhs);
}

// weight [O, C/G, k...] times columns [N, C * K, L] (K = prod(k)): [N, O, L].
at::Tensor groupedMatmul(const at::Tensor &weight, const at::Tensor &cols, int64_t groups) {
  const int64_t out = weight.size(0);
  return groupedBmm(weight.reshape({groups, out / groups, cols.size(1) / groups}), cols);
}

// Kernel of ones without padding: a matmul over channels of the (strided)
// input, no patches needed.
at::Tensor pointwiseConvolution(const at::Tensor &input, const at::Tensor &weight,
                                c10::IntArrayRef stride, int64_t groups) {
  at::Tensor x = input;
  for (size_t i = 0; i < stride.size(); ++i)
    if (stride[i] > 1)
      x = x.slice(static_cast<int64_t>(i) + 2, 0, c10::nullopt, stride[i]);
  const int64_t n = x.size(0), channels = x.size(1), out = weight.size(0);
  const Sizes spatial = x.sizes().slice(2).vec();
  const int64_t points = c10::multiply_integers(spatial);
  if (input.suggest_memory_format() == at::MemoryFormat::Contiguous)
    return groupedMatmul(weight, x.reshape({n, channels, points}), groups)
        .reshape(concat({n, out}, spatial));
  // Channels-last input is [N * points, C] in memory already; so is the output.
  const at::Tensor rows =
      x.movedim(1, -1).reshape({n * points, groups, channels / groups}).transpose(0, 1);
  const at::Tensor w = weight.reshape({groups, out / groups, channels / groups}).transpose(1, 2);
  return at::bmm(rows, w)
      .transpose(0, 1)
      .reshape(concat(concat({n}, spatial), {out}))
      .movedim(-1, 1);
}

// The patches of every image, laid out as im2col lays them out: [N, C * K,
// points] (K = prod(kernel)), from views of the padded input (one window per
// output point along each spatial dim, every d-th element of a window) and one
// gather. Any number of spatial dims.
at::Tensor gatheredPatches(const at::Tensor &input, c10::IntArrayRef kernel,
                           const ConvolutionArgs &args) {
  const int64_t spatial = static_cast<int64_t>(kernel.size());
  at::Tensor x = input;
  if (!allEqual(args.padding, 0)) {
    Sizes pad; // constant_pad_nd order: last dim first
    for (int64_t i = spatial - 1; i >= 0; --i)
      pad.insert(pad.end(), {args.padding[i], args.padding[i]});
    x = at::constant_pad_nd(x, pad, 0);
  }
  for (int64_t i = 0; i < spatial; ++i) {
    x = x.unfold(i + 2, args.dilation[i] * (kernel[i] - 1) + 1, args.stride[i]);
    if (args.dilation[i] > 1)
      x = x.slice(-1, 0, c10::nullopt, args.dilation[i]);
  }
  // [N, C, out..., k...] -> [N, C, k..., out...]
  Sizes order{0, 1};
  for (int64_t i = 0; i < spatial; ++i)
    order.push_back(2 + spatial + i);
  for (int64_t i = 0; i < spatial; ++i)
    order.push_back(2 + i);
  const int64_t points = c10::multiply_integers(x.sizes().slice(2, spatial));
  return x.permute(order).reshape({x.size(0), x.size(1) * c10::multiply_integers(kernel), points});
}

// 2-d patches come from ATen's im2col, which pads as it gathers but launches a
// kernel per image (and col2im, its backward, too): the batch is folded into
// the channels, so that one kernel gathers every image's patches, already laid
// out [N, C * K, points]. 3-d has no im2col.
at::Tensor patches(const at::Tensor &input, c10::IntArrayRef kernel, const ConvolutionArgs &args) {
  if (kernel.size() != 2)
    return gatheredPatches(input, kernel, args);
  const int64_t n = input.size(0), channels = input.size(1);
  if (n <= 1) // nothing to fold (or no channels to fold into)
    return at::im2col(input, kernel, args.dilation, args.padding, args.stride);
  const at::Tensor cols = at::im2col(input.reshape({1, n * channels, input.size(2), input.size(3)}),
                                     kernel, args.dilation, args.padding, args.stride);
  return cols.reshape({n, channels * kernel[0] * kernel[1], cols.size(2)});
}

Sizes convolvedSizes(const at::Tensor &input, const at::Tensor &weight,
                     const ConvolutionArgs &args) {
  const auto kernel = weight.sizes().slice(2);
  Sizes sizes{input.size(0), weight.size(0)};
  for (size_t i = 0; i < kernel.size(); ++i)
    sizes.push_back(convolvedExtent(input.size(static_cast<int64_t>(i) + 2), kernel[i],
                                    args.stride[i], args.padding[i], args.dilation[i]));
  return sizes;
}

// A transposed convolution's weight [C, O/G, k...] as the weight [O, C/G, k...]
// of the regular convolution it transposes (not flipped).
at::Tensor regularWeight(const at::Tensor &weight, int64_t groups) {
  const auto kernel = weight.sizes().slice(2);
  const int64_t in = weight.size(0), outPerGroup = weight.size(1);
  return weight.reshape(concat({groups, in / groups, outPerGroup}, kernel))
      .transpose(1, 2)
      .reshape(concat({groups * outPerGroup, in / groups}, kernel));
}

void saveArgs(torch::autograd::AutogradContext *ctx, const ConvolutionArgs &args) {
  ctx->saved_data["stride"] = args.stride;
  ctx->saved_data["padding"] = args.padding;
  ctx->saved_data["dilation"] = args.dilation;
  ctx->saved_data["groups"] = args.groups;
}

// The regular (not transposed) convolution's arguments saveArgs saved.
ConvolutionArgs savedArgs(torch::autograd::AutogradContext *ctx) {
  ConvolutionArgs args;
  args.stride = ctx->saved_data["stride"].toIntVector();
  args.padding = ctx->saved_data["padding"].toIntVector();
  args.dilation = ctx->saved_data["dilation"].toIntVector();
  args.groups = ctx->saved_data["groups"].toInt();
  args.outputPadding.assign(args.stride.size(), 0);
  return args;
}

// The transposed convolution that takes a regular convolution's output
// gradient back to the input's extent: the same hyper-parameters, and as
// output padding the rows and columns the forward's stride skipped.
ConvolutionArgs inputGradientArgs(const at::Tensor &grad, const at::Tensor &input,
                                  c10::IntArrayRef kernel, ConvolutionArgs args) {
  for (size_t i = 0; i < kernel.size(); ++i) {
    const auto dim = static_cast<int64_t>(i) + 2;
    args.outputPadding[i] =
        input.size(dim) - transposedExtent(grad.size(dim), kernel[i], args.stride[i],
                                           args.padding[i], args.dilation[i], 0);
  }
  args.transposed = true;
  return args;
}

at::Tensor convolveBatched(const at::Tensor &input, const at::Tensor &weight,
                           const ConvolutionArgs &args);

// A kernel as large as its stride, unpadded and undilated (U-Net's 2x2,
// stride-2 up-convolutions): each input point's block of outputs overlaps no
// other, so the output is the columns rearranged, no sum needed.
bool blocksTile(c10::IntArrayRef kernel, const ConvolutionArgs &args) {
  for (size_t i = 0; i < kernel.size(); ++i)
    if (kernel[i] != args.stride[i] || args.padding[i] != 0 || args.dilation[i] != 1 ||
        args.outputPadding[i] != 0)
      return false;
  return true;
}

// Columns [N, O * kh * kw, H * W] as the output [N, O, H * kh, W * kw].
at::Tensor tiledBlocks(const at::Tensor &cols, int64_t n, c10::IntArrayRef kernel,
                       c10::IntArrayRef extent) {
  const int64_t out = cols.size(1) / (kernel[0] * kernel[1]);
  return cols.reshape({n, out, kernel[0], kernel[1], extent[0], extent[1]})
      .permute({0, 1, 4, 2, 5, 3})
      .reshape({n, out, extent[0] * kernel[0], extent[1] * kernel[1]});
}

// Stride 1, padding within the dilated kernel's reach, no output padding: a
// transposed convolution is then a regular stride-1 convolution
// with the kernel transposed and flipped, padded d (k - 1) - p, whose patches
// im2col gathers. col2im, which sums the others' columns, took 3.5x im2col's
// time per call on CUDA (the input gradients of the UNet b2 training step,
// H200).
bool transposesAsConvolution(c10::IntArrayRef kernel, const ConvolutionArgs &args) {
  for (size_t i = 0; i < kernel.size(); ++i)
    if (args.stride[i] != 1 || args.padding[i] > args.dilation[i] * (kernel[i] - 1) ||
        args.outputPadding[i] != 0)
      return false;
  return true;
}

ConvolutionArgs flippedKernelArgs(c10::IntArrayRef kernel, const ConvolutionArgs &args) {
  ConvolutionArgs regular = args;
  for (size_t i = 0; i < kernel.size(); ++i)
    regular.padding[i] = args.dilation[i] * (kernel[i] - 1) - args.padding[i];
  regular.transposed = false;
  return regular;
}

// Where transposesAsConvolution, that convolution; otherwise the columns
// W_g^T x_g of all groups in one batched matmul, then col2im sums the
// overlapping patches into the output.
at::Tensor transposedConvolution2d(const at::Tensor &input, const at::Tensor &weight,
                                   const ConvolutionArgs &args) {
  const auto kernel = weight.sizes().slice(2);
  if (transposesAsConvolution(kernel, args))
    return convolveBatched(input, regularWeight(weight, args.groups).flip({2, 3}),
                           flippedKernelArgs(kernel, args));
  const int64_t n = input.size(0), in = input.size(1), groups = args.groups;
  const int64_t rows = weight.size(1) * kernel[0] * kernel[1];
  const int64_t points = input.size(2) * input.size(3);
  const at::Tensor w = weight.reshape({groups, in / groups, rows}).transpose(1, 2);
  const at::Tensor cols = groupedBmm(w, input.reshape({n, in, points}));
  Sizes outSize, fullSize;
  bool oneBlockPerInput = true;
  for (int64_t i = 0; i < 2; ++i) {
    const int64_t s = args.stride[i], d = args.dilation[i];
    outSize.push_back(transposedExtent(input.size(i + 2), kernel[i], s, args.padding[i], d,
                                       args.outputPadding[i]));
    fullSize.push_back(transposedExtent(input.size(i + 2), kernel[i], s, 0, d, 0));
    oneBlockPerInput = oneBlockPerInput && args.outputPadding[i] < s;
  }
  if (blocksTile(kernel, args))
    return tiledBlocks(cols, n, kernel, input.sizes().slice(2));
  if (oneBlockPerInput)
    return at::col2im(cols, outSize, kernel, args.dilation, args.padding, args.stride);
  // An output padding of a stride or more (allowed when the dilation is larger)
  // adds output blocks no input maps to, which col2im rejects: fold the
  // uncropped output, then crop the padding and append the output padding.
  const at::Tensor full = at::col2im(cols, fullSize, kernel, args.dilation, {0, 0}, args.stride);
  const auto &p = args.padding, &op = args.outputPadding;
  return at::constant_pad_nd(full, {-p[1], op[1] - p[1], -p[0], op[0] - p[0]}, 0);
}

at::Tensor weightTimesPatches(const at::Tensor &input, const at::Tensor &weight,
                              const at::Tensor &cols, const ConvolutionArgs &args) {
  return groupedMatmul(weight, cols, args.groups).reshape(convolvedSizes(input, weight, args));
}

// Output points per image from which rowPatchConvolution2d pays (128 x 128).
constexpr int64_t kPointsForRowPatches = int64_t{1} << 14;
constexpr int64_t kChannelsForRowPatches = 16;

// Whether a 2-d convolution gathers its patches one kernel row at a time:
// stride 1, one group, a kernel of several rows, 16 or more input channels
// and no fewer than output channels, 128 x 128 output points or more.
// Measured on the H200 (3x3, bench/conv_formulations.py): 0.8-0.9x the
// whole patches' time at 256 x 256 with 32 or 64 input channels and at
// 128 x 128 with 16; slower where the output channels outnumber the input's
// (each kernel row's GEMM reads and writes the output again) or the images are
// small (their patches are cheap to gather).
bool gathersPatchesByRow(const at::Tensor &input, const at::Tensor &weight,
                         const ConvolutionArgs &args) {
  if (weight.dim() != 4 || args.transposed || args.groups != 1 || weight.size(2) < 2 ||
      !allEqual(args.stride, 1))
    return false;
  const int64_t in = input.size(1), out = weight.size(0);
  const Sizes sizes = convolvedSizes(input, weight, args);
  return in >= kChannelsForRowPatches && out <= in && sizes[2] * sizes[3] >= kPointsForRowPatches;
}

// A stride-1 2-d convolution whose patches hold one kernel row: im2col with
// the kernel 1 x kw (and both dims' padding) gathers kw taps per point over
// every padded row, kw times the input instead of kh * kw times; kernel row i
// is then those patches shifted by i * d rows, a view. kh GEMMs of K = C * kw,
// accumulated into the output.
at::Tensor rowPatchConvolution2d(const at::Tensor &input, const at::Tensor &weight,
                                 const ConvolutionArgs &args) {
  const int64_t n = input.size(0), in = input.size(1), out = weight.size(0);
  const int64_t kernelRows = weight.size(2), kw = weight.size(3);
  // A kernel of one row ignores the rows' dilation: [N, C * kw, (H + 2p) * outW].
  const at::Tensor rows = patches(input, {1, kw}, args);
  const Sizes sizes = convolvedSizes(input, weight, args);
  const int64_t points = sizes[2] * sizes[3], rowStep = args.dilation[0] * sizes[3];
  const at::Tensor taps = weight.permute({2, 0, 1, 3}).reshape({kernelRows, out, in * kw});
  at::Tensor result = at::bmm(taps[0].expand({n, out, in * kw}), rows.narrow(2, 0, points));
  for (int64_t i = 1; i < kernelRows; ++i)
    result.baddbmm_(taps[i].expand({n, out, in * kw}), rows.narrow(2, i * rowStep, points));
  return result.reshape(sizes);
}

// The 2-d convolution by patches, with a backward of its own, built from
// differentiable ops (so double backward works):
//   grad input:  the transposed convolution of the gradient;
//   grad weight: sharedLhsGradient of the saved patches (recomputed from the
//                input under create_graph, so that they carry its graph).
class PatchConvolution2dFunction : public torch::autograd::Function<PatchConvolution2dFunction> {
public:
  static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &input,
                            const at::Tensor &weight, const ConvolutionArgs &args) {
    at::AutoDispatchBelowADInplaceOrView belowAutograd;
    const at::Tensor cols = patches(input, weight.sizes().slice(2), args);
    ctx->save_for_backward({input, weight, cols});
    saveArgs(ctx, args);
    return weightTimesPatches(input, weight, cols, args);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &weight = saved[1], &grad = grads[0];
    const ConvolutionArgs args = savedArgs(ctx);
    const auto kernel = weight.sizes().slice(2);
    at::Tensor gradInput, gradWeight;
    if (ctx->needs_input_grad(0))
      gradInput =
          transposedConvolution2d(grad, weight, inputGradientArgs(grad, input, kernel, args));
    if (ctx->needs_input_grad(1)) {
      const at::Tensor cols = at::GradMode::is_enabled() ? patches(input, kernel, args) : saved[2];
      gradWeight =
          sharedLhsGradient(grad.flatten(2), cols, args.groups, weight.size(0) / args.groups)
              .reshape(weight.sizes());
    }
    return {gradInput, gradWeight, at::Tensor()};
  }
};

// 2-d and 3-d: the weight times the patches (a kernel row's at a time where
// gathersPatchesByRow), in batched matrix products.
at::Tensor convolutionByPatches(const at::Tensor &input, const at::Tensor &weight,
                                const ConvolutionArgs &args) {
  if (weight.dim() == 4 && recordsGradient(input, weight))
    return PatchConvolution2dFunction::apply(input, weight, args);
  // Recorded convolutions keep the whole patches for the weight gradient:
  // computed from row patches instead, it halves the UNet step's memory but
  // takes 1.12-1.14x its time (bench/RESULTS.md).
  if (gathersPatchesByRow(input, weight, args))
    return rowPatchConvolution2d(input, weight, args);
  return weightTimesPatches(input, weight, patches(input, weight.sizes().slice(2), args), args);
}

ConvolutionArgs regularStrideOne(const ConvolutionArgs &args) {
  ConvolutionArgs regular = args;
  const size_t spatial = args.stride.size();
  regular.stride.assign(spatial, 1);
  regular.padding.assign(spatial, 0);
  regular.outputPadding.assign(spatial, 0);
  regular.transposed = false;
  return regular;
}

// Spreads the input by the stride (s - 1 zeros between elements) and pads
// d * (k - 1) - p before and that plus the output padding after (negative
// crops), so that a stride-1 convolution with the flipped kernel transposes.
at::Tensor spreadAndPad(const at::Tensor &input, c10::IntArrayRef kernel,
                        const ConvolutionArgs &args) {
  const int64_t spatial = static_cast<int64_t>(kernel.size());
  at::Tensor x = input;
  Sizes pad(2 * spatial); // constant_pad_nd order: last dim first
  for (int64_t i = 0; i < spatial; ++i) {
    const int64_t dim = i + 2, s = args.stride[i];
    const int64_t before = args.dilation[i] * (kernel[i] - 1) - args.padding[i];
    int64_t after = before + args.outputPadding[i];
    if (s > 1) {
      // Each element followed by s - 1 zeros; the zeros after the last one are cropped below.
      x = x.unsqueeze(dim + 1);
      Sizes spread(2 * (x.dim() - dim - 1), 0);
      spread.back() = s - 1;
      x = at::constant_pad_nd(x, spread, 0).flatten(dim, dim + 1);
      after -= s - 1;
    }
    pad[2 * (spatial - 1 - i)] = before;
    pad[2 * (spatial - 1 - i) + 1] = after;
  }
  return allEqual(pad, 0) ? x : at::constant_pad_nd(x, pad, 0);
}

at::Tensor transposedConvolution3d(const at::Tensor &input, const at::Tensor &weight,
                                   const ConvolutionArgs &args) {
  const at::Tensor spread = spreadAndPad(input, weight.sizes().slice(2), args);
  const at::Tensor flipped = regularWeight(weight, args.groups).flip({2, 3, 4});
  return convolveBatched(spread, flipped, regularStrideOne(args));
}

// 1-d as 2-d with a leading spatial dim of extent 1.
ConvolutionArgs liftTo2d(const ConvolutionArgs &args) {
  ConvolutionArgs lifted = args;
  lifted.stride.insert(lifted.stride.begin(), 1);
  lifted.padding.insert(lifted.padding.begin(), 0);
  lifted.dilation.insert(lifted.dilation.begin(), 1);
  lifted.outputPadding.insert(lifted.outputPadding.begin(), 0);
  return lifted;
}

bool isPointwise(const at::Tensor &weight, const ConvolutionArgs &args) {
  const bool plain = allEqual(weight.sizes().slice(2), 1) && allEqual(args.padding, 0);
  if (!args.transposed)
    return plain;
  return plain && allEqual(args.stride, 1) && allEqual(args.outputPadding, 0);
}

// One filter per channel (groups == channels, no multiplier): ConvNeXt's,
// MobileNet's and EfficientNet's depthwise layers. As a grouped matrix product
// each group's product is a single row, so the columns' memory traffic
// dominates; the device's own depthwise kernel is several times faster.
bool isDepthwise2d(const at::Tensor &input, const at::Tensor &weight, const ConvolutionArgs &args) {
  return weight.dim() == 4 && !args.transposed && args.groups > 1 && weight.size(1) == 1 &&
         weight.size(0) == args.groups && input.size(1) == args.groups;
}

// The depthwise forward kernel: ATen's direct depthwise kernel on CUDA/HIP
// devices (its own kernel, not the DNN library; only its autograd formula
// would reach convolution_backward, hence the Function below), the columns'
// formulation elsewhere.
at::Tensor depthwiseKernel(const at::Tensor &input, const at::Tensor &weight,
                           const ConvolutionArgs &args) {
  if (input.is_cuda() && input.numel() > 0)
    return at::_conv_depthwise2d(input, weight, weight.sizes().slice(2), c10::nullopt, args.stride,
                                 args.padding, args.dilation);
  return convolutionByPatches(input, weight, args);
}

// Depthwise 2-d convolution with its own backward, built from itself and
// differentiable ATen ops (so double backward works too):
//   grad input:  the same depthwise convolution, flipped kernel, stride 1,
//                over the gradient spread by the stride and padded (the
//                transposed convolution, as transposedConvolution3d does);
//   grad weight: per channel, the patches of the input times the gradient,
//                one batched matrix-vector product over batch and channels.
class DepthwiseFunction : public torch::autograd::Function<DepthwiseFunction> {
public:
  static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &input,
                            const at::Tensor &weight, const ConvolutionArgs &args) {
    ctx->save_for_backward({input, weight});
    saveArgs(ctx, args);
    at::AutoDispatchBelowADInplaceOrView belowAutograd;
    return depthwiseKernel(input, weight, args);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &weight = saved[1];
    const ConvolutionArgs args = savedArgs(ctx);
    const at::Tensor &grad = grads[0];
    at::Tensor gradInput, gradWeight;
    if (ctx->needs_input_grad(0))
      gradInput = depthwiseInputGradient(grad, input, weight, args);
    if (ctx->needs_input_grad(1))
      gradWeight = depthwiseWeightGradient(grad, input, weight, args);
    return {gradInput, gradWeight, at::Tensor()};
  }

private:
  static at::Tensor depthwiseInputGradient(const at::Tensor &grad, const at::Tensor &input,
                                           const at::Tensor &weight, const ConvolutionArgs &args) {
    const auto kernel = weight.sizes().slice(2);
    const ConvolutionArgs transposed = inputGradientArgs(grad, input, kernel, args);
    const at::Tensor spread = spreadAndPad(grad, kernel, transposed);
    return apply(spread, weight.flip({2, 3}), regularStrideOne(transposed));
  }

  static at::Tensor depthwiseWeightGradient(const at::Tensor &grad, const at::Tensor &input,
                                            const at::Tensor &weight, const ConvolutionArgs &args) {
    const auto kernel = weight.sizes().slice(2);
    const int64_t n = input.size(0), channels = weight.size(0);
    const int64_t taps = kernel[0] * kernel[1], points = grad.size(2) * grad.size(3);
    const at::Tensor cols = patches(input, kernel, args);
    const at::Tensor perChannel = at::bmm(cols.reshape({n * channels, taps, points}),
                                          grad.reshape({n * channels, points, 1}));
    return perChannel.reshape({n, channels, taps}).sum(0).reshape(weight.sizes());
  }
};

at::Tensor convolveBatched(const at::Tensor &input, const at::Tensor &weight,
                           const ConvolutionArgs &args) {
  if (isDepthwise2d(input, weight, args) && !isPointwise(weight, args))
    return recordsGradient(input, weight) ? DepthwiseFunction::apply(input, weight, args)
                                          : depthwiseKernel(input, weight, args);
  if (weight.dim() == 3)
    return convolveBatched(input.unsqueeze(2), weight.unsqueeze(2), liftTo2d(args)).squeeze(2);
  if (isPointwise(weight, args)) {
    const at::Tensor w = args.transposed ? regularWeight(weight, args.groups) : weight;
    return pointwiseConvolution(input, w, args.stride, args.groups);
  }
  if (weight.dim() == 4)
    return args.transposed ? transposedConvolution2d(input, weight, args)
                           : convolutionByPatches(input, weight, args);
  return args.transposed ? transposedConvolution3d(input, weight, args)
                         : convolutionByPatches(input, weight, args);
}

at::Tensor addBias(const at::Tensor &out, const at::Tensor &bias) {
  Sizes shape(out.dim(), 1);
  shape[1] = bias.numel();
  return out + bias.reshape(shape);
}

} // namespace

c10::MemoryFormat convolutionOutputFormat(const at::Tensor &input, const at::Tensor &weight) {
  if (input.dim() != 4 && input.dim() != 5)
    return at::MemoryFormat::Contiguous;
  const auto channelsLast =
      input.dim() == 4 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::ChannelsLast3d;
  const bool wanted = input.suggest_memory_format() == channelsLast ||
                      weight.suggest_memory_format() == channelsLast;
  return wanted ? channelsLast : at::MemoryFormat::Contiguous;
}

at::Tensor nativeConvolution(const at::Tensor &input, const at::Tensor &weight,
                             const c10::optional<at::Tensor> &bias, const ConvolutionArgs &args) {
  checkArguments(input, weight, bias, args);
  const bool unbatched = input.dim() == weight.dim() - 1;
  const auto compute = computeType(input);
  const at::Tensor x = asType(unbatched ? input.unsqueeze(0) : input, compute);
  const at::Tensor w = asType(weight, compute);
  at::Tensor out = convolveBatched(x, w, args).contiguous(convolutionOutputFormat(x, w));
  if (bias && bias->defined())
    out = addBias(out, asType(*bias, compute));
  out = asType(out, input.scalar_type());
  return unbatched ? out.squeeze(0) : out;
}

} // namespace rdna1
