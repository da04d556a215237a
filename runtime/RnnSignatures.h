// ATen's signatures of lstm, gru, rnn_tanh and rnn_relu (padded and packed
// overloads) over a pair of layer-stack runners with NativeRnn.h's shape: the
// eager kernels run the native stacks where the tensors are (EagerRnn.cpp),
// rewritten models' rdna1:: ops place them by backend first (RnnKernels.cpp).
#pragma once

#include "NativeRnn.h"

#include <ATen/ATen.h>

#include <tuple>
#include <vector>

namespace rdna1 {

template <PaddedRnnRunner *Padded, PackedRnnRunner *Packed> struct RnnSignatures {
  using Two = std::tuple<at::Tensor, at::Tensor>;
  using Three = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

  static Three lstm(const at::Tensor &input, at::TensorList hx, at::TensorList params,
                    bool hasBiases, int64_t layers, double dropout, bool train, bool bidirectional,
                    bool batchFirst) {
    checkLstmStates(hx);
    const RnnArgs args{RnnCell::Lstm, hasBiases, layers, dropout, train, bidirectional};
    const RnnResult result = Padded(args, input, hx.vec(), params, batchFirst);
    return {result.output, result.finals[0], result.finals[1]};
  }

  static Three lstmData(const at::Tensor &data, const at::Tensor &batchSizes, at::TensorList hx,
                        at::TensorList params, bool hasBiases, int64_t layers, double dropout,
                        bool train, bool bidirectional) {
    checkLstmStates(hx);
    const RnnArgs args{RnnCell::Lstm, hasBiases, layers, dropout, train, bidirectional};
    const RnnResult result = Packed(args, data, batchSizes, hx.vec(), params);
    return {result.output, result.finals[0], result.finals[1]};
  }

  template <RnnCell Kind>
  static Two singleState(const at::Tensor &input, const at::Tensor &hx, at::TensorList params,
                         bool hasBiases, int64_t layers, double dropout, bool train,
                         bool bidirectional, bool batchFirst) {
    const RnnArgs args{Kind, hasBiases, layers, dropout, train, bidirectional};
    const RnnResult result = Padded(args, input, {hx}, params, batchFirst);
    return {result.output, result.finals[0]};
  }

  template <RnnCell Kind>
  static Two singleStateData(const at::Tensor &data, const at::Tensor &batchSizes,
                             const at::Tensor &hx, at::TensorList params, bool hasBiases,
                             int64_t layers, double dropout, bool train, bool bidirectional) {
    const RnnArgs args{Kind, hasBiases, layers, dropout, train, bidirectional};
    const RnnResult result = Packed(args, data, batchSizes, {hx}, params);
    return {result.output, result.finals[0]};
  }

private:
  static void checkLstmStates(at::TensorList hx) {
    TORCH_CHECK(hx.size() == 2, "rdna1: an LSTM expects two hidden states (h, c), got ", hx.size());
  }
};

} // namespace rdna1
