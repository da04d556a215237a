// How many nodes a pass rewrote, by the original node's kind (e.g. "aten::conv2d").
#pragma once

#include <map>
#include <string>

namespace rdna1::passes {

using RewriteCounts = std::map<std::string, int>;

inline int total(const RewriteCounts &counts) {
  int sum = 0;
  for (const auto &entry : counts)
    sum += entry.second;
  return sum;
}

} // namespace rdna1::passes
