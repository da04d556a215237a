// The rdna1:: operators the passes emit and look for, interned once (OpSchemas.h has their names
// and schemas, shared with the runtime).
#pragma once

#include <rdna1/OpSchemas.h>

#include <ATen/core/interned_strings.h>

namespace rdna1::passes::symbols {

inline const c10::Symbol kConv = c10::Symbol::fromQualString(ops::kConv);
inline const c10::Symbol kConvBackward = c10::Symbol::fromQualString(ops::kConvBackward);
inline const c10::Symbol kBatchNorm = c10::Symbol::fromQualString(ops::kBatchNorm);
inline const c10::Symbol kInstanceNorm = c10::Symbol::fromQualString(ops::kInstanceNorm);
inline const c10::Symbol kLstm = c10::Symbol::fromQualString(ops::kLstm);
inline const c10::Symbol kGru = c10::Symbol::fromQualString(ops::kGru);
inline const c10::Symbol kRnnTanh = c10::Symbol::fromQualString(ops::kRnnTanh);
inline const c10::Symbol kRnnRelu = c10::Symbol::fromQualString(ops::kRnnRelu);
inline const c10::Symbol kToHost = c10::Symbol::fromQualString(ops::kToHost);
inline const c10::Symbol kToDevice = c10::Symbol::fromQualString(ops::kToDevice);
inline const c10::Symbol kHostParams = c10::Symbol::fromQualString(ops::kHostParams);
inline const c10::Symbol kHostParam = c10::Symbol::fromQualString(ops::kHostParam);
inline const c10::Symbol kCopyBack = c10::Symbol::fromQualString(ops::kCopyBack);
inline const c10::Symbol kSetDefaultBackend = c10::Symbol::fromQualString(ops::kSetDefaultBackend);
// Called by files written by 0.2 (their conv training copy); never emitted now.
inline const c10::Symbol kTrainWithConvRegions =
    c10::Symbol::fromQualString(ops::kTrainWithConvRegions);

} // namespace rdna1::passes::symbols
