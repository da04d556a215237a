// Eager kernels for aten::lstm, gru, rnn_tanh and rnn_relu (padded and packed
// overloads), built from ATen's native ops: ATen's own implementations pick
// cuDNN/MIOpen from the process-global flag, and MIOpen's RNNs fail on RDNA1.
// The layer loop is ATen's (aten/src/ATen/native/RNN.cpp): the input's part of
// the gates in one matrix product per layer, then a cell per time step;
// dropout between layers in training, through at::dropout as ATen does, so the
// same seed draws the same masks. On CUDA/HIP devices the LSTM and GRU cells
// are ATen's fused kernels (_thnn_fused_*_cell), elsewhere plain ops.
#include "EagerKernels.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

namespace rdna1::eager {
namespace {

enum class Cell { Lstm, Gru, Tanh, Relu };

// One layer and direction's weights, in the order nn.RNNBase keeps them.
struct CellWeights {
  at::Tensor inputWeight, hiddenWeight, inputBias, hiddenBias, projection;
};

// {h} for GRU and plain RNNs, {h, c} for LSTMs; each [batch, features].
using Hidden = std::vector<at::Tensor>;

std::vector<CellWeights> gatherWeights(at::TensorList params, bool hasBiases, bool hasProjections) {
  const size_t stride = 2 + (hasBiases ? 2 : 0) + (hasProjections ? 1 : 0);
  TORCH_CHECK(params.size() % stride == 0, "rdna1 eager RNN: got ", params.size(),
              " weights, expected a multiple of ", stride);
  std::vector<CellWeights> weights;
  for (size_t i = 0; i < params.size(); i += stride) {
    CellWeights w;
    w.inputWeight = params[i];
    w.hiddenWeight = params[i + 1];
    if (hasBiases) {
      w.inputBias = params[i + 2];
      w.hiddenBias = params[i + 3];
    }
    if (hasProjections)
      w.projection = params[i + stride - 1];
    weights.push_back(w);
  }
  return weights;
}

at::Tensor linearWithOptionalBias(const at::Tensor &x, const at::Tensor &weight,
                                  const at::Tensor &bias) {
  return at::linear(x, weight, bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt);
}

Hidden lstmStep(const at::Tensor &inputGates, const Hidden &hidden, const CellWeights &w) {
  const at::Tensor hiddenGates = linearWithOptionalBias(hidden[0], w.hiddenWeight, w.hiddenBias);
  at::Tensor h, c;
  if (inputGates.is_cuda()) {
    auto fused = at::_thnn_fused_lstm_cell(inputGates, hiddenGates, hidden[1]);
    h = std::get<0>(fused);
    c = std::get<1>(fused);
  } else {
    const auto gates = (inputGates + hiddenGates).chunk(4, 1);
    c = gates[1].sigmoid() * hidden[1] + gates[0].sigmoid() * gates[2].tanh();
    h = gates[3].sigmoid() * c.tanh();
  }
  if (w.projection.defined())
    h = at::matmul(h, w.projection.t());
  return {h, c};
}

Hidden gruStep(const at::Tensor &inputGates, const Hidden &hidden, const CellWeights &w) {
  const at::Tensor hiddenGates = linearWithOptionalBias(hidden[0], w.hiddenWeight, w.hiddenBias);
  if (inputGates.is_cuda())
    return {std::get<0>(at::_thnn_fused_gru_cell(inputGates, hiddenGates, hidden[0]))};
  const auto i = inputGates.chunk(3, 1);
  const auto h = hiddenGates.chunk(3, 1);
  const at::Tensor reset = (i[0] + h[0]).sigmoid();
  const at::Tensor update = (i[1] + h[1]).sigmoid();
  const at::Tensor candidate = (i[2] + reset * h[2]).tanh();
  return {candidate + update * (hidden[0] - candidate)};
}

Hidden step(Cell cell, const at::Tensor &inputGates, const Hidden &hidden, const CellWeights &w) {
  switch (cell) {
  case Cell::Lstm:
    return lstmStep(inputGates, hidden, w);
  case Cell::Gru:
    return gruStep(inputGates, hidden, w);
  case Cell::Tanh:
    return {(inputGates + linearWithOptionalBias(hidden[0], w.hiddenWeight, w.hiddenBias)).tanh()};
  case Cell::Relu:
    break;
  }
  return {(inputGates + linearWithOptionalBias(hidden[0], w.hiddenWeight, w.hiddenBias)).relu()};
}

Hidden sliceBatch(const Hidden &hidden, int64_t start, int64_t end) {
  Hidden sliced;
  for (const at::Tensor &t : hidden)
    sliced.push_back(t.narrow(0, start, end - start));
  return sliced;
}

Hidden concatBatch(const std::vector<Hidden> &parts) {
  Hidden joined;
  for (size_t k = 0; k < parts.front().size(); ++k) {
    std::vector<at::Tensor> pieces;
    for (const Hidden &part : parts)
      pieces.push_back(part[k]);
    joined.push_back(at::cat(pieces, 0));
  }
  return joined;
}

struct LayerResult {
  at::Tensor output;
  Hidden final;
};

// Padded input [time, batch, features], one direction.
LayerResult paddedLayer(Cell cell, const at::Tensor &input, Hidden hidden, const CellWeights &w,
                        bool reverse) {
  const auto inputGates = linearWithOptionalBias(input, w.inputWeight, w.inputBias).unbind(0);
  std::vector<at::Tensor> outputs(inputGates.size());
  const int64_t steps = static_cast<int64_t>(inputGates.size());
  for (int64_t k = 0; k < steps; ++k) {
    const int64_t t = reverse ? steps - 1 - k : k;
    hidden = step(cell, inputGates[t], hidden, w);
    outputs[t] = hidden[0];
  }
  return {at::stack(outputs, 0), hidden};
}

// Packed input [sum(batch sizes), features], forward in time: sequences that
// end drop off the batch's tail, and their final state is kept.
LayerResult packedLayer(Cell cell, const at::Tensor &data, const std::vector<int64_t> &batchSizes,
                        Hidden hidden, const CellWeights &w) {
  const at::Tensor inputGates = linearWithOptionalBias(data, w.inputWeight, w.inputBias);
  std::vector<at::Tensor> outputs;
  std::vector<Hidden> finished;
  int64_t offset = 0, lastBatch = batchSizes.front();
  for (int64_t batch : batchSizes) {
    if (batch < lastBatch) {
      finished.push_back(sliceBatch(hidden, batch, lastBatch));
      hidden = sliceBatch(hidden, 0, batch);
    }
    lastBatch = batch;
    hidden = step(cell, inputGates.narrow(0, offset, batch), hidden, w);
    outputs.push_back(hidden[0]);
    offset += batch;
  }
  finished.push_back(hidden);
  std::reverse(finished.begin(), finished.end());
  return {at::cat(outputs, 0), concatBatch(finished)};
}

// Packed input backward in time: sequences join the batch as their last step comes.
LayerResult reversedPackedLayer(Cell cell, const at::Tensor &data,
                                const std::vector<int64_t> &batchSizes, const Hidden &initial,
                                const CellWeights &w) {
  const at::Tensor inputGates = linearWithOptionalBias(data, w.inputWeight, w.inputBias);
  std::vector<at::Tensor> outputs;
  int64_t offset = data.size(0), lastBatch = batchSizes.back();
  Hidden hidden = sliceBatch(initial, 0, lastBatch);
  for (auto it = batchSizes.rbegin(); it != batchSizes.rend(); ++it) {
    const int64_t batch = *it;
    if (batch > lastBatch)
      hidden = concatBatch({hidden, sliceBatch(initial, lastBatch, batch)});
    offset -= batch;
    hidden = step(cell, inputGates.narrow(0, offset, batch), hidden, w);
    outputs.push_back(hidden[0]);
    lastBatch = batch;
  }
  std::reverse(outputs.begin(), outputs.end());
  return {at::cat(outputs, 0), hidden};
}

struct StackOptions {
  Cell cell;
  int64_t layers;
  double dropout;
  bool train;
  bool bidirectional;
  c10::optional<std::vector<int64_t>> batchSizes; // packed input when set
};

// Layers and directions; `initial` holds one [layers * directions, batch, features]
// tensor per state. Returns the last layer's output and the stacked final states.
std::pair<at::Tensor, Hidden> runStack(const StackOptions &options, at::Tensor input,
                                       const Hidden &initial,
                                       const std::vector<CellWeights> &weights) {
  const int64_t directions = options.bidirectional ? 2 : 1;
  TORCH_CHECK(static_cast<int64_t>(weights.size()) == options.layers * directions,
              "rdna1 eager RNN: expected weights for ", options.layers * directions,
              " layers and directions, got ", weights.size());
  std::vector<Hidden> finals;
  for (int64_t layer = 0; layer < options.layers; ++layer) {
    if (layer > 0 && options.dropout > 0 && options.train)
      input = at::dropout(input, options.dropout, options.train);
    std::vector<at::Tensor> outputs;
    for (int64_t direction = 0; direction < directions; ++direction) {
      const int64_t index = layer * directions + direction;
      Hidden start;
      for (const at::Tensor &state : initial)
        start.push_back(state[index]);
      const CellWeights &w = weights[index];
      const bool reverse = direction == 1;
      LayerResult result =
          !options.batchSizes ? paddedLayer(options.cell, input, start, w, reverse)
          : reverse ? reversedPackedLayer(options.cell, input, *options.batchSizes, start, w)
                    : packedLayer(options.cell, input, *options.batchSizes, start, w);
      outputs.push_back(result.output);
      finals.push_back(result.final);
    }
    input = directions == 1 ? outputs[0] : at::cat(outputs, -1);
  }
  Hidden stacked;
  for (size_t k = 0; k < initial.size(); ++k) {
    std::vector<at::Tensor> perLayer;
    for (const Hidden &final : finals)
      perLayer.push_back(final[k]);
    stacked.push_back(at::stack(perLayer, 0));
  }
  return {input, stacked};
}

std::vector<int64_t> batchSizesOf(const at::Tensor &batchSizes) {
  const at::Tensor sizes = batchSizes.to(at::kCPU, at::kLong).contiguous();
  return {sizes.data_ptr<int64_t>(), sizes.data_ptr<int64_t>() + sizes.numel()};
}

std::pair<at::Tensor, Hidden> runPadded(Cell cell, const at::Tensor &input, const Hidden &hx,
                                        at::TensorList params, bool hasBiases, int64_t layers,
                                        double dropout, bool train, bool bidirectional,
                                        bool batchFirst) {
  const bool projections = cell == Cell::Lstm && hx[0].size(2) != hx[1].size(2);
  const StackOptions options{cell, layers, dropout, train, bidirectional, c10::nullopt};
  auto [output, finals] = runStack(options, batchFirst ? input.transpose(0, 1) : input, hx,
                                   gatherWeights(params, hasBiases, projections));
  return {batchFirst ? output.transpose(0, 1) : output, finals};
}

std::pair<at::Tensor, Hidden> runPacked(Cell cell, const at::Tensor &data,
                                        const at::Tensor &batchSizes, const Hidden &hx,
                                        at::TensorList params, bool hasBiases, int64_t layers,
                                        double dropout, bool train, bool bidirectional) {
  const bool projections = cell == Cell::Lstm && hx[0].size(2) != hx[1].size(2);
  const StackOptions options{cell, layers, dropout, train, bidirectional, batchSizesOf(batchSizes)};
  return runStack(options, data, hx, gatherWeights(params, hasBiases, projections));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstmInput(const at::Tensor &input, at::TensorList hx,
                                                         at::TensorList params, bool hasBiases,
                                                         int64_t layers, double dropout, bool train,
                                                         bool bidirectional, bool batchFirst) {
  TORCH_CHECK(hx.size() == 2, "rdna1 eager LSTM: expected two hidden states, got ", hx.size());
  auto [output, finals] = runPadded(Cell::Lstm, input, hx.vec(), params, hasBiases, layers, dropout,
                                    train, bidirectional, batchFirst);
  return {output, finals[0], finals[1]};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor>
lstmData(const at::Tensor &data, const at::Tensor &batchSizes, at::TensorList hx,
         at::TensorList params, bool hasBiases, int64_t layers, double dropout, bool train,
         bool bidirectional) {
  TORCH_CHECK(hx.size() == 2, "rdna1 eager LSTM: expected two hidden states, got ", hx.size());
  auto [output, finals] = runPacked(Cell::Lstm, data, batchSizes, hx.vec(), params, hasBiases,
                                    layers, dropout, train, bidirectional);
  return {output, finals[0], finals[1]};
}

template <Cell Kind>
std::tuple<at::Tensor, at::Tensor> singleStateInput(const at::Tensor &input, const at::Tensor &hx,
                                                    at::TensorList params, bool hasBiases,
                                                    int64_t layers, double dropout, bool train,
                                                    bool bidirectional, bool batchFirst) {
  auto [output, finals] = runPadded(Kind, input, {hx}, params, hasBiases, layers, dropout, train,
                                    bidirectional, batchFirst);
  return {output, finals[0]};
}

template <Cell Kind>
std::tuple<at::Tensor, at::Tensor>
singleStateData(const at::Tensor &data, const at::Tensor &batchSizes, const at::Tensor &hx,
                at::TensorList params, bool hasBiases, int64_t layers, double dropout, bool train,
                bool bidirectional) {
  auto [output, finals] = runPacked(Kind, data, batchSizes, {hx}, params, hasBiases, layers,
                                    dropout, train, bidirectional);
  return {output, finals[0]};
}

// Plain differentiable ops: the same kernels serve both keys.
void registerAt(torch::Library &library) {
  library.impl("lstm.input", TORCH_FN(lstmInput));
  library.impl("lstm.data", TORCH_FN(lstmData));
  library.impl("gru.input", TORCH_FN(singleStateInput<Cell::Gru>));
  library.impl("gru.data", TORCH_FN(singleStateData<Cell::Gru>));
  library.impl("rnn_tanh.input", TORCH_FN(singleStateInput<Cell::Tanh>));
  library.impl("rnn_tanh.data", TORCH_FN(singleStateData<Cell::Tanh>));
  library.impl("rnn_relu.input", TORCH_FN(singleStateInput<Cell::Relu>));
  library.impl("rnn_relu.data", TORCH_FN(singleStateData<Cell::Relu>));
}

} // namespace

void registerRnnKernels(torch::Library &autogradKey, torch::Library &backendKey) {
  registerAt(autogradKey);
  registerAt(backendKey);
}

} // namespace rdna1::eager
