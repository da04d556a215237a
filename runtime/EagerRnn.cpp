// Eager kernels for aten::lstm, gru, rnn_tanh and rnn_relu (padded and packed
// overloads): the native layer stacks placed by the backend (PlacedRnn.h), as
// in rewritten models, so they never reach cuDNN/MIOpen.
#include "EagerKernels.h"
#include "PlacedRnn.h"
#include "RnnSignatures.h"

#include <ATen/ATen.h>

namespace rdna1::eager {
namespace {

using Eager = RnnSignatures<placedRnnPadded, placedRnnPacked>;

// Plain differentiable ops: the same kernels serve both keys.
void registerAt(torch::Library &library) {
  library.impl("lstm.input", TORCH_FN(Eager::lstm));
  library.impl("lstm.data", TORCH_FN(Eager::lstmData));
  library.impl("gru.input", TORCH_FN(Eager::singleState<RnnCell::Gru>));
  library.impl("gru.data", TORCH_FN(Eager::singleStateData<RnnCell::Gru>));
  library.impl("rnn_tanh.input", TORCH_FN(Eager::singleState<RnnCell::Tanh>));
  library.impl("rnn_tanh.data", TORCH_FN(Eager::singleStateData<RnnCell::Tanh>));
  library.impl("rnn_relu.input", TORCH_FN(Eager::singleState<RnnCell::Relu>));
  library.impl("rnn_relu.data", TORCH_FN(Eager::singleStateData<RnnCell::Relu>));
}

} // namespace

void registerRnnKernels(torch::Library &autogradKey, torch::Library &backendKey) {
  registerAt(autogradKey);
  registerAt(backendKey);
}

} // namespace rdna1::eager
