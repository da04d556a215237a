#include "NativeRnn.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

namespace rdna1 {
namespace {

// One layer and direction's weights, in the order nn.RNNBase keeps them.
struct CellWeights {
  at::Tensor inputWeight, hiddenWeight, inputBias, hiddenBias, projection;
};

// {h} for GRU and plain RNNs, {h, c} for LSTMs; each [batch, features].
using Hidden = std::vector<at::Tensor>;

std::vector<CellWeights> gatherWeights(at::TensorList params, bool hasBiases, bool hasProjections) {
  const size_t stride = 2 + (hasBiases ? 2 : 0) + (hasProjections ? 1 : 0);
  TORCH_CHECK(params.size() % stride == 0, "rdna1 RNN: got ", params.size(),
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

Hidden step(RnnCell cell, const at::Tensor &inputGates, const Hidden &hidden,
            const CellWeights &w) {
  switch (cell) {
  case RnnCell::Lstm:
    return lstmStep(inputGates, hidden, w);
  case RnnCell::Gru:
    return gruStep(inputGates, hidden, w);
  case RnnCell::Tanh:
    return {(inputGates + linearWithOptionalBias(hidden[0], w.hiddenWeight, w.hiddenBias)).tanh()};
  case RnnCell::Relu:
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
LayerResult paddedLayer(RnnCell cell, const at::Tensor &input, Hidden hidden, const CellWeights &w,
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
LayerResult packedLayer(RnnCell cell, const at::Tensor &data,
                        const std::vector<int64_t> &batchSizes, Hidden hidden,
                        const CellWeights &w) {
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
LayerResult reversedPackedLayer(RnnCell cell, const at::Tensor &data,
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
  RnnCell cell;
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
              "rdna1 RNN: expected weights for ", options.layers * directions,
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

bool hasProjections(const RnnArgs &args, const std::vector<at::Tensor> &hx) {
  return args.cell == RnnCell::Lstm && hx[0].size(2) != hx[1].size(2);
}

} // namespace

RnnResult nativeRnnPadded(const RnnArgs &args, const at::Tensor &input,
                          const std::vector<at::Tensor> &hx, at::TensorList params,
                          bool batchFirst) {
  const StackOptions options{args.cell,  args.layers,        args.dropout,
                             args.train, args.bidirectional, c10::nullopt};
  auto [output, finals] = runStack(options, batchFirst ? input.transpose(0, 1) : input, hx,
                                   gatherWeights(params, args.hasBiases, hasProjections(args, hx)));
  return {batchFirst ? output.transpose(0, 1) : output, finals};
}

RnnResult nativeRnnPacked(const RnnArgs &args, const at::Tensor &data, const at::Tensor &batchSizes,
                          const std::vector<at::Tensor> &hx, at::TensorList params) {
  const StackOptions options{args.cell,  args.layers,        args.dropout,
                             args.train, args.bidirectional, batchSizesOf(batchSizes)};
  auto [output, finals] =
      runStack(options, data, hx, gatherWeights(params, args.hasBiases, hasProjections(args, hx)));
  return {output, finals};
}

} // namespace rdna1
