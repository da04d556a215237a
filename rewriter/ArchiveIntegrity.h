// Checks every entry of a zip archive against the CRC-32 stored for it.
// libtorch reads TorchScript archives without this check, so a file whose
// weight bytes were damaged on disk or in transit would load and run.
#pragma once

#include <optional>
#include <string>

namespace rdna1::tool {

// Why the archive at `path` is damaged (the first entry whose bytes do not
// match their CRC-32, or a broken zip structure), or nothing when every entry
// checks out. Reads the whole file once; stored and deflated entries, zip64.
std::optional<std::string> findArchiveDamage(const std::string &path);

} // namespace rdna1::tool
