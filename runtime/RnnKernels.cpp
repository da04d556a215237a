// Kernels of rdna1::lstm, gru, rnn_tanh and rnn_relu (padded and packed
// overloads): the native layer stacks placed by the runtime's backend
// (PlacedRnn.h).
//
// Registered as CompositeImplicitAutograd, like the norms: every step, the
// crossings included (Transfer.h records a copy that requires grad under grad
// mode), is a differentiable ATen op, so autograd derives the backward and one
// kernel also serves inference mode.
#include "PlacedRnn.h"
#include "RnnSignatures.h"
#include "Transfer.h"

#include <rdna1/Backend.h>

#include <ATen/ATen.h>
#include <torch/library.h>

#include <functional>

namespace rdna1 {
namespace {

using Tensors = std::vector<at::Tensor>;
// Runs a layer stack on (input or data, hx, params), all on one device.
using RunStack = std::function<RnnResult(const at::Tensor &, const Tensors &, at::TensorList)>;

// Older CPU kernels lack fp16 matrix products: half tensors compute in fp32 on the host.
at::Tensor hostComputable(const at::Tensor &tensor) {
  return tensor.scalar_type() == at::kHalf ? tensor.to(at::kFloat) : tensor;
}

RnnResult runOnHost(const at::Tensor &input, const Tensors &hx, at::TensorList params,
                    const RunStack &run) {
  Tensors operands{input};
  operands.insert(operands.end(), hx.begin(), hx.end());
  operands.insert(operands.end(), params.begin(), params.end());
  Tensors host = toHost(operands);
  for (at::Tensor &tensor : host)
    tensor = hostComputable(tensor);
  const auto paramsBegin = host.begin() + 1 + static_cast<std::ptrdiff_t>(hx.size());
  const Tensors hostHx(host.begin() + 1, paramsBegin);
  const Tensors hostParams(paramsBegin, host.end());
  RnnResult result = run(host[0], hostHx, hostParams);

  Tensors results{result.output};
  results.insert(results.end(), result.finals.begin(), result.finals.end());
  Tensors moved = toDevices(results, std::vector<c10::Device>(results.size(), input.device()));
  for (at::Tensor &tensor : moved)
    tensor = tensor.to(input.scalar_type());
  return {moved[0], Tensors(moved.begin() + 1, moved.end())};
}

RnnResult runPlaced(const at::Tensor &input, const Tensors &hx, at::TensorList params,
                    const RunStack &run) {
  if (backendFor(input.device()) == Backend::Host)
    return runOnHost(input, hx, params, run);
  return run(input, hx, params);
}

} // namespace

RnnResult placedRnnPadded(const RnnArgs &args, const at::Tensor &input, const Tensors &hx,
                          at::TensorList params, bool batchFirst) {
  return runPlaced(input, hx, params,
                   [&](const at::Tensor &in, const Tensors &states, at::TensorList weights) {
                     return nativeRnnPadded(args, in, states, weights, batchFirst);
                   });
}

// batch_sizes stays where PackedSequence keeps it, on the CPU.
RnnResult placedRnnPacked(const RnnArgs &args, const at::Tensor &data, const at::Tensor &batchSizes,
                          const Tensors &hx, at::TensorList params) {
  return runPlaced(data, hx, params,
                   [&](const at::Tensor &in, const Tensors &states, at::TensorList weights) {
                     return nativeRnnPacked(args, in, batchSizes, states, weights);
                   });
}

namespace {

using Placed = RnnSignatures<placedRnnPadded, placedRnnPacked>;

} // namespace
} // namespace rdna1

TORCH_LIBRARY_IMPL(rdna1, CompositeImplicitAutograd, m) {
  using rdna1::Placed;
  using rdna1::RnnCell;
  m.impl("lstm", TORCH_FN(Placed::lstm));
  m.impl("lstm.data", TORCH_FN(Placed::lstmData));
  m.impl("gru", TORCH_FN(Placed::singleState<RnnCell::Gru>));
  m.impl("gru.data", TORCH_FN(Placed::singleStateData<RnnCell::Gru>));
  m.impl("rnn_tanh", TORCH_FN(Placed::singleState<RnnCell::Tanh>));
  m.impl("rnn_tanh.data", TORCH_FN(Placed::singleStateData<RnnCell::Tanh>));
  m.impl("rnn_relu", TORCH_FN(Placed::singleState<RnnCell::Relu>));
  m.impl("rnn_relu.data", TORCH_FN(Placed::singleStateData<RnnCell::Relu>));
}
