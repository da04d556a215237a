// The rdna1:: operator surface: names and schemas shared by the graph passes
// (which emit calls) and the runtime (which registers kernels).
//
// These strings are a file-format contract: rewritten models store calls by
// name, so a schema here is never changed in place. Add an overload instead.
#pragma once

namespace rdna1::ops {

inline constexpr const char *kNamespace = "rdna1";

inline constexpr const char *kConv = "rdna1::conv";
inline constexpr const char *kConvSchema =
    "conv(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding, "
    "int[] dilation, bool transposed, int[] output_padding, int groups) -> Tensor";

// String padding ('same' / 'valid'), resolved at run time from the weight's shape.
inline constexpr const char *kConvPaddingOverload = "padding";
inline constexpr const char *kConvPaddingSchema =
    "conv.padding(Tensor input, Tensor weight, Tensor? bias, int[] stride, str padding, "
    "int[] dilation, int groups) -> Tensor";

inline constexpr const char *kConvBackward = "rdna1::conv_backward";
inline constexpr const char *kConvBackwardSchema =
    "conv_backward(Tensor grad_output, Tensor input, Tensor weight, int[]? bias_sizes, "
    "int[] stride, int[] padding, int[] dilation, bool transposed, int[] output_padding, "
    "int groups, bool[3] output_mask) -> (Tensor, Tensor, Tensor)";

// Batch and instance norm through ATen's native kernels. PyTorch 2.x ignores
// aten::batch_norm's cudnn_enabled argument and picks cuDNN/MIOpen from the
// global flag, so clearing the argument is not enough there. The running
// statistics are updated in place in training mode, as the schemas say.
inline constexpr const char *kBatchNorm = "rdna1::batch_norm";
inline constexpr const char *kBatchNormSchema =
    "batch_norm(Tensor input, Tensor? weight, Tensor? bias, Tensor(a!)? running_mean, "
    "Tensor(b!)? running_var, bool training, float momentum, float eps, bool cudnn_enabled) "
    "-> Tensor";
inline constexpr const char *kInstanceNorm = "rdna1::instance_norm";
inline constexpr const char *kInstanceNormSchema =
    "instance_norm(Tensor input, Tensor? weight, Tensor? bias, Tensor(a!)? running_mean, "
    "Tensor(b!)? running_var, bool use_input_stats, float momentum, float eps, "
    "bool cudnn_enabled) -> Tensor";

// Recurrent layers through ATen's native cells, never cuDNN/MIOpen (MIOpen is
// PyTorch's RNN library on ROCm, and its RNNs fail on RDNA1). Each has the
// arguments of its aten:: twin: the default overload aten::lstm.input's
// (padded input), `data` aten::lstm.data's (a PackedSequence's data and
// batch_sizes). They run where the backend says: device and vendor on the
// tensors' device, host on the CPU with the operands copied across.
inline constexpr const char *kLstm = "rdna1::lstm";
inline constexpr const char *kLstmSchema =
    "lstm(Tensor input, Tensor[] hx, Tensor[] params, bool has_biases, int num_layers, "
    "float dropout, bool train, bool bidirectional, bool batch_first) -> (Tensor, Tensor, Tensor)";
inline constexpr const char *kLstmDataSchema =
    "lstm.data(Tensor data, Tensor batch_sizes, Tensor[] hx, Tensor[] params, bool has_biases, "
    "int num_layers, float dropout, bool train, bool bidirectional) -> (Tensor, Tensor, Tensor)";
inline constexpr const char *kGru = "rdna1::gru";
inline constexpr const char *kGruSchema =
    "gru(Tensor input, Tensor hx, Tensor[] params, bool has_biases, int num_layers, "
    "float dropout, bool train, bool bidirectional, bool batch_first) -> (Tensor, Tensor)";
inline constexpr const char *kGruDataSchema =
    "gru.data(Tensor data, Tensor batch_sizes, Tensor hx, Tensor[] params, bool has_biases, "
    "int num_layers, float dropout, bool train, bool bidirectional) -> (Tensor, Tensor)";
inline constexpr const char *kRnnTanh = "rdna1::rnn_tanh";
inline constexpr const char *kRnnTanhSchema =
    "rnn_tanh(Tensor input, Tensor hx, Tensor[] params, bool has_biases, int num_layers, "
    "float dropout, bool train, bool bidirectional, bool batch_first) -> (Tensor, Tensor)";
inline constexpr const char *kRnnTanhDataSchema =
    "rnn_tanh.data(Tensor data, Tensor batch_sizes, Tensor hx, Tensor[] params, bool has_biases, "
    "int num_layers, float dropout, bool train, bool bidirectional) -> (Tensor, Tensor)";
inline constexpr const char *kRnnRelu = "rdna1::rnn_relu";
inline constexpr const char *kRnnReluSchema =
    "rnn_relu(Tensor input, Tensor hx, Tensor[] params, bool has_biases, int num_layers, "
    "float dropout, bool train, bool bidirectional, bool batch_first) -> (Tensor, Tensor)";
inline constexpr const char *kRnnReluDataSchema =
    "rnn_relu.data(Tensor data, Tensor batch_sizes, Tensor hx, Tensor[] params, bool has_biases, "
    "int num_layers, float dropout, bool train, bool bidirectional) -> (Tensor, Tensor)";

// Host-region boundaries: one batched transfer per direction for every tensor
// that crosses, with autograd (gradients cross back batched too). `like` names
// the device the region's results return to.
inline constexpr const char *kToHost = "rdna1::to_host";
inline constexpr const char *kToHostSchema = "to_host(Tensor[] tensors) -> Tensor[]";
inline constexpr const char *kToDevice = "rdna1::to_device";
inline constexpr const char *kToDeviceSchema =
    "to_device(Tensor[] tensors, Tensor like) -> Tensor[]";
// Host copies of parameters and constants, cached across calls.
inline constexpr const char *kHostParams = "rdna1::host_params";
inline constexpr const char *kHostParamsSchema = "host_params(Tensor[] params) -> Tensor[]";

// One parameter that may be None (e.g. a scripted Conv2d's Optional[Tensor] bias).
inline constexpr const char *kHostParam = "rdna1::host_param";
inline constexpr const char *kHostParamSchema = "host_param(Tensor? param) -> Tensor?";

// Copies host tensors into device tensors (updated running statistics after a
// training-mode region), batched; pairs that are already the same tensor are skipped.
// It returns nothing, so it is registered with conservative alias analysis
// (a side effect TorchScript never removes). Runtimes before 0.2 declared the
// write as `Tensor(a!)[] targets` instead, and TorchScript's dead-code
// elimination dropped every call when a saved model was loaded (its targets are
// module buffers that nothing reads later). Saved code calls the op by name,
// so files written then keep their statistics with this runtime.
inline constexpr const char *kCopyBack = "rdna1::copy_back";
inline constexpr const char *kCopyBackSchema =
    "copy_back(Tensor[] targets, Tensor[] sources) -> ()";

// Forgets every cached host copy (after writes through `param.data`, which the
// cache cannot see).
inline constexpr const char *kClearParamCacheSchema = "clear_param_cache() -> ()";

// The stand-in device (tests on machines without a GPU): host tensors cross
// region boundaries as copies, as device tensors would.
inline constexpr const char *kSetStandInDeviceSchema = "set_stand_in_device(bool on) -> ()";

// Backends (rdna1/Backend.h). set_default_backend is what `rdna1-rewrite
// --backend=X` emits at the top of a model's methods (a side effect, registered
// with conservative alias analysis so TorchScript keeps it); set_backend is the
// API override; backend_for names the backend a device resolves to.
inline constexpr const char *kSetDefaultBackend = "rdna1::set_default_backend";
inline constexpr const char *kSetDefaultBackendSchema = "set_default_backend(str backend) -> ()";
inline constexpr const char *kSetBackendSchema = "set_backend(str? backend) -> ()";
inline constexpr const char *kBackendForSchema = "backend_for(Device device) -> str";
// The device probe's verdicts, one line per accelerator (DeviceProbe.h).
inline constexpr const char *kProbeSchema = "probe(bool refresh=False) -> str";

// Which training copy a rewritten forward takes (rdna1-rewrite --train-regions=bus):
// true where the host backend serves `device` and its bus, measured once per
// process (pinned copies, the slower direction), is fast enough for the conv
// copy (convolutions alone on the host) to beat `auto` (runtime/TrainingRegions.h);
// RDNA1_TRAIN_REGIONS=auto|conv forces the answer. Conservative alias analysis: its answer is the
// machine's, so TorchScript must never fold it into a constant.
inline constexpr const char *kTrainWithConvRegions = "rdna1::train_with_conv_regions";
inline constexpr const char *kTrainWithConvRegionsSchema =
    "train_with_conv_regions(Device? device) -> bool";
// The bus's pinned bandwidth to and from `device`, GB/s, the slower direction,
// measured once per process; 0 for the CPU.
inline constexpr const char *kBusBandwidthSchema = "bus_bandwidth(Device device) -> float";

inline constexpr const char *kCountersSchema = "counters() -> Dict(str, int)";
inline constexpr const char *kResetCountersSchema = "reset_counters() -> ()";

// Eager mode (rdna1/Eager.h): aten:: kernels that keep an ordinary program's
// convolutions, norms and RNNs away from cuDNN/MIOpen. `on_cpu` (tests only)
// registers them for CPU tensors instead of GPU ones.
inline constexpr const char *kEagerEnableSchema =
    "eager_enable(str? backend=None, bool on_cpu=False) -> ()";
inline constexpr const char *kEagerDisableSchema = "eager_disable() -> ()";
inline constexpr const char *kEagerEnabledSchema = "eager_enabled() -> bool";

inline constexpr const char *kRuntimeInfo = "rdna1::runtime_info";
inline constexpr const char *kRuntimeInfoSchema = "runtime_info() -> str";

} // namespace rdna1::ops
