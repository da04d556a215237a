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

inline constexpr const char *kRuntimeInfo = "rdna1::runtime_info";
inline constexpr const char *kRuntimeInfoSchema = "runtime_info() -> str";

} // namespace rdna1::ops
