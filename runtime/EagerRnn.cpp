// Eager kernels for aten::lstm, gru, rnn_tanh and rnn_relu (padded and packed
// overloads): the native layer stacks of NativeRnn.h, on whatever device the
// tensors are, so they never reach cuDNN/MIOpen.
#include "EagerKernels.h"
#include "NativeRnn.h"

#include <ATen/ATen.h>

namespace rdna1::eager {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstmInput(const at::Tensor &input, at::TensorList hx,
                                                         at::TensorList params, bool hasBiases,
                                                         int64_t layers, double dropout, bool train,
                                                         bool bidirectional, bool batchFirst) {
  TORCH_CHECK(hx.size() == 2, "rdna1 eager LSTM: expected two hidden states, got ", hx.size());
  const RnnArgs args{RnnCell::Lstm, hasBiases, layers, dropout, train, bidirectional};
  RnnResult result = nativeRnnPadded(args, input, hx.vec(), params, batchFirst);
  return {result.output, result.finals[0], result.finals[1]};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor>
lstmData(const at::Tensor &data, const at::Tensor &batchSizes, at::TensorList hx,
         at::TensorList params, bool hasBiases, int64_t layers, double dropout, bool train,
         bool bidirectional) {
  TORCH_CHECK(hx.size() == 2, "rdna1 eager LSTM: expected two hidden states, got ", hx.size());
  const RnnArgs args{RnnCell::Lstm, hasBiases, layers, dropout, train, bidirectional};
  RnnResult result = nativeRnnPacked(args, data, batchSizes, hx.vec(), params);
  return {result.output, result.finals[0], result.finals[1]};
}

template <RnnCell Kind>
std::tuple<at::Tensor, at::Tensor> singleStateInput(const at::Tensor &input, const at::Tensor &hx,
                                                    at::TensorList params, bool hasBiases,
                                                    int64_t layers, double dropout, bool train,
                                                    bool bidirectional, bool batchFirst) {
  const RnnArgs args{Kind, hasBiases, layers, dropout, train, bidirectional};
  RnnResult result = nativeRnnPadded(args, input, {hx}, params, batchFirst);
  return {result.output, result.finals[0]};
}

template <RnnCell Kind>
std::tuple<at::Tensor, at::Tensor>
singleStateData(const at::Tensor &data, const at::Tensor &batchSizes, const at::Tensor &hx,
                at::TensorList params, bool hasBiases, int64_t layers, double dropout, bool train,
                bool bidirectional) {
  const RnnArgs args{Kind, hasBiases, layers, dropout, train, bidirectional};
  RnnResult result = nativeRnnPacked(args, data, batchSizes, {hx}, params);
  return {result.output, result.finals[0]};
}

// Plain differentiable ops: the same kernels serve both keys.
void registerAt(torch::Library &library) {
  library.impl("lstm.input", TORCH_FN(lstmInput));
  library.impl("lstm.data", TORCH_FN(lstmData));
  library.impl("gru.input", TORCH_FN(singleStateInput<RnnCell::Gru>));
  library.impl("gru.data", TORCH_FN(singleStateData<RnnCell::Gru>));
  library.impl("rnn_tanh.input", TORCH_FN(singleStateInput<RnnCell::Tanh>));
  library.impl("rnn_tanh.data", TORCH_FN(singleStateData<RnnCell::Tanh>));
  library.impl("rnn_relu.input", TORCH_FN(singleStateInput<RnnCell::Relu>));
  library.impl("rnn_relu.data", TORCH_FN(singleStateData<RnnCell::Relu>));
}

} // namespace

void registerRnnKernels(torch::Library &autogradKey, torch::Library &backendKey) {
  registerAt(autogradKey);
  registerAt(backendKey);
}

} // namespace rdna1::eager
