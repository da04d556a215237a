// rdna1-probe --device cuda:N: the child process of the runtime's device probe
// (runtime/DeviceProbe.h). Runs a few convolutions forward and backward through
// the device backend on that device and compares them with float64 on the host.
// Prints one line starting with "ok" and exits 0 when all agree; otherwise says
// which one did not and exits 3. A crash or hang here is the answer too: the
// parent turns it into "host" without being taken down itself.
#include <rdna1/Backend.h>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Case {
  const char *name;
  std::vector<int64_t> input, weight;
  std::vector<int64_t> stride, padding, dilation;
  bool transposed;
  std::vector<int64_t> outputPadding;
  int64_t groups;
};

const std::vector<Case> &cases() {
  static const std::vector<Case> all{
      {"3x3", {2, 8, 12, 12}, {16, 8, 3, 3}, {1}, {1}, {1}, false, {0}, 1},
      {"1x1", {2, 16, 9, 9}, {8, 16, 1, 1}, {1}, {0}, {1}, false, {0}, 1},
      {"grouped 3x3 stride 2", {2, 16, 11, 11}, {16, 4, 3, 3}, {2}, {1}, {1}, false, {0}, 4},
      {"depthwise 3x3 stride 2", {2, 12, 10, 10}, {12, 1, 3, 3}, {2}, {1}, {1}, false, {0}, 12},
      {"transposed 2x2 stride 2", {2, 8, 6, 6}, {8, 4, 2, 2}, {2}, {0}, {1}, true, {0}, 1},
      {"1-d dilated", {2, 4, 40}, {6, 4, 5}, {1}, {4}, {2}, false, {0}, 1},
  };
  return all;
}

// Output and the gradients of input, weight and bias for a fixed weighting of the output.
std::vector<at::Tensor> run(const Case &c, const std::vector<at::Tensor> &operands, bool native) {
  std::vector<at::Tensor> leaves;
  for (const at::Tensor &t : operands)
    leaves.push_back(t.detach().requires_grad_());
  static const auto conv =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("rdna1::conv", "")
          .typed<at::Tensor(const at::Tensor &, const at::Tensor &,
                            const c10::optional<at::Tensor> &, c10::IntArrayRef, c10::IntArrayRef,
                            c10::IntArrayRef, bool, c10::IntArrayRef, int64_t)>();
  const at::Tensor out = native
                             ? conv.call(leaves[0], leaves[1], leaves[2], c.stride, c.padding,
                                         c.dilation, c.transposed, c.outputPadding, c.groups)
                             : at::convolution(leaves[0], leaves[1], leaves[2], c.stride, c.padding,
                                               c.dilation, c.transposed, c.outputPadding, c.groups);
  const at::Tensor weighting = at::linspace(-1, 1, out.numel(), out.options()).view(out.sizes());
  const auto grads = torch::autograd::grad({(out * weighting).sum()}, leaves);
  std::vector<at::Tensor> results{out.detach()};
  results.insert(results.end(), grads.begin(), grads.end());
  return results;
}

double relativeError(const at::Tensor &got, const at::Tensor &want) {
  const double scale = std::max(1.0, want.abs().max().item<double>());
  return (got.to(at::kCPU, at::kDouble) - want).abs().max().item<double>() / scale;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 3 || std::strcmp(argv[1], "--device") != 0) {
    std::fprintf(stderr, "usage: rdna1-probe --device cuda:N\n");
    return 2;
  }
  try {
    const c10::Device device(argv[2]);
    rdna1::setBackend(rdna1::Backend::Device);
    at::globalContext().setAllowTF32CuBLAS(false);
    at::manual_seed(0);
    double worst = 0;
    for (const Case &c : cases()) {
      const int64_t outChannels = c.transposed ? c.weight[1] * c.groups : c.weight[0];
      const std::vector<at::Tensor> host{at::randn(c.input, at::kDouble),
                                         at::randn(c.weight, at::kDouble),
                                         at::randn({outChannels}, at::kDouble)};
      std::vector<at::Tensor> onDevice;
      for (const at::Tensor &t : host)
        onDevice.push_back(t.to(device, at::kFloat));
      const auto want = run(c, host, /*native=*/false);
      const auto got = run(c, onDevice, /*native=*/true);
      for (size_t i = 0; i < want.size(); ++i) {
        const double error = relativeError(got[i], want[i]);
        worst = std::max(worst, error);
        if (!(error < 1e-3)) {
          std::printf("mismatch: %s, %s off by %.3g\n", c.name, i == 0 ? "output" : "a gradient",
                      error);
          return 3;
        }
      }
    }
    std::printf("ok: %zu convolutions, forward and backward, match the host (worst relative "
                "error %.2g)\n",
                cases().size(), worst);
    return 0;
  } catch (const std::exception &error) {
    const std::string message = error.what();
    std::printf("error: %s\n", message.substr(0, message.find('\n')).c_str());
    return 3;
  }
}
