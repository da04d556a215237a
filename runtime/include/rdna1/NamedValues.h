// A table of an option's values by the names users type, with a line of help each: the one shape
// of Backend.h's and RewriteOptions.h's tables, and the look-ups both need.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace rdna1 {

template <typename Value> struct NamedValue {
  Value value;
  const char *name;
  const char *help;
};

template <typename Value, std::size_t N>
std::optional<Value> valueNamed(const NamedValue<Value> (&table)[N], const std::string &name) {
  for (const NamedValue<Value> &each : table)
    if (name == each.name)
      return each.value;
  return std::nullopt;
}

template <typename Value, std::size_t N>
const char *nameOf(const NamedValue<Value> (&table)[N], Value value) {
  for (const NamedValue<Value> &each : table)
    if (each.value == value)
      return each.name;
  return table[0].name;
}

// "'a', 'b' or 'c'": the names, for a message saying what is expected.
template <typename Value, std::size_t N>
std::string quotedNames(const NamedValue<Value> (&table)[N]) {
  std::string text;
  for (std::size_t i = 0; i < N; ++i)
    text += (i == 0 ? "'" : i + 1 == N ? " or '" : ", '") + std::string(table[i].name) + "'";
  return text;
}

} // namespace rdna1
