// The rewrite's options, declared once: their names, values and help, which the CLI (llvm::cl),
// Python's rdna1.rewrite and the C++ API (Rewriter.h) all read from here, and the one parser from
// the names users type.
#pragma once

#include <rdna1/Backend.h>

#include <stdexcept>
#include <string>

namespace rdna1 {

enum class RegionMode { Auto, PerOp };

struct RewriteOptions {
  RegionMode regions = RegionMode::Auto;
  std::string backend = "auto"; // baked into the model's methods (rdna1::set_default_backend)
  bool strict = false;          // refuse nodes that would still reach cuDNN/MIOpen, not warn
};

inline constexpr NamedValue<RegionMode> kRegionModeNames[] = {
    {RegionMode::Auto, "auto",
     "host regions chosen by the cost model: tensors cross the bus once per region, and forward "
     "gets a copy for eval mode where that saves crossings"},
    {RegionMode::PerOp, "per-op", "no regions: each convolution moves its own operands"}};

inline const char *regionModeName(RegionMode mode) {
  return nameOf(kRegionModeNames, mode);
}

// Throws std::invalid_argument with one line naming the option, its values and what was given.
inline RewriteOptions parseRewriteOptions(const std::string &regions, const std::string &backend,
                                          bool strict) {
  const std::optional<RegionMode> mode = valueNamed(kRegionModeNames, regions);
  if (!mode)
    throw std::invalid_argument("regions must be " + quotedNames(kRegionModeNames) + ", got '" +
                                regions + "'");
  if (!valueNamed(kBackendNames, backend))
    throw std::invalid_argument("backend must be " + quotedNames(kBackendNames) + ", got '" +
                                backend + "'");
  return {*mode, backend, strict};
}

} // namespace rdna1
