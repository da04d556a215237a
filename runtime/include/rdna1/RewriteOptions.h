// The rewrite's options, declared once: their names, values and help, which the CLI (llvm::cl),
// Python's rdna1.rewrite and the C++ API (Rewriter.h) all read from here, and the one parser from
// the names users type.
#pragma once

#include <rdna1/Backend.h>

#include <iterator>
#include <stdexcept>
#include <string>

namespace rdna1 {

enum class RegionMode { Auto, PerOp };

struct RewriteOptions {
  RegionMode regions = RegionMode::Auto;
  std::string backend = "auto"; // baked into the model's methods (rdna1::set_default_backend)
  bool strict = false;          // refuse nodes that would still reach cuDNN/MIOpen, not warn
};

struct RegionModeName {
  RegionMode mode;
  const char *name;
  const char *help;
};
inline constexpr RegionModeName kRegionModeNames[] = {
    {RegionMode::Auto, "auto",
     "host regions chosen by the cost model: tensors cross the bus once per region, and forward "
     "gets a copy for eval mode where that saves crossings"},
    {RegionMode::PerOp, "per-op", "no regions: each convolution moves its own operands"}};

inline const char *regionModeName(RegionMode mode) {
  for (const RegionModeName &each : kRegionModeNames)
    if (each.mode == mode)
      return each.name;
  return "auto";
}

namespace detail {
// "'a', 'b' or 'c'" from a table's names.
template <typename Table> std::string quotedNames(const Table &table) {
  std::string text;
  const size_t count = std::size(table);
  for (size_t i = 0; i < count; ++i)
    text += (i == 0 ? "'" : i + 1 == count ? " or '" : ", '") + std::string(table[i].name) + "'";
  return text;
}
} // namespace detail

// Throws std::invalid_argument with one line naming the option, its values and what was given.
inline RewriteOptions parseRewriteOptions(const std::string &regions, const std::string &backend,
                                          bool strict) {
  RewriteOptions options;
  options.strict = strict;
  bool known = false;
  for (const RegionModeName &each : kRegionModeNames)
    if (regions == each.name) {
      options.regions = each.mode;
      known = true;
    }
  if (!known)
    throw std::invalid_argument("regions must be " + detail::quotedNames(kRegionModeNames) +
                                ", got '" + regions + "'");
  known = false;
  for (const BackendName &each : kBackendNames)
    known = known || backend == each.name;
  if (!known)
    throw std::invalid_argument("backend must be " + detail::quotedNames(kBackendNames) +
                                ", got '" + backend + "'");
  options.backend = backend;
  return options;
}

} // namespace rdna1
