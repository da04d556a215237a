#include "ArchiveIntegrity.h"

#ifndef RDNA1_WITHOUT_ZLIB
#include <zlib.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <vector>

namespace rdna1::tool {
#ifndef RDNA1_WITHOUT_ZLIB
namespace {

constexpr uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr uint32_t kZip64EndLocator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint16_t kZip64Extra = 0x0001;
constexpr uint16_t kStored = 0;
constexpr uint16_t kDeflated = 8;
constexpr size_t kChunk = 1 << 20;

struct Damaged {
  std::string why;
};

uint64_t readLE(const unsigned char *p, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i)
    value = value << 8 | p[i];
  return value;
}

class ArchiveFile {
public:
  explicit ArchiveFile(const std::string &path) : in_(path, std::ios::binary) {
    if (!in_)
      throw Damaged{"cannot be opened"};
    in_.seekg(0, std::ios::end);
    size_ = static_cast<uint64_t>(in_.tellg());
  }
  uint64_t size() const { return size_; }

  std::vector<unsigned char> read(uint64_t offset, uint64_t count) {
    if (offset > size_ || count > size_ - offset)
      throw Damaged{"its zip structure points past the end of the file"};
    std::vector<unsigned char> bytes(count);
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(reinterpret_cast<char *>(bytes.data()), static_cast<std::streamsize>(count));
    if (static_cast<uint64_t>(in_.gcount()) != count)
      throw Damaged{"it cannot be read to the end"};
    return bytes;
  }

  // Feeds `count` bytes from `offset` to `consume` in chunks.
  template <typename Consume> void stream(uint64_t offset, uint64_t count, Consume consume) {
    for (uint64_t done = 0; done < count;) {
      const uint64_t step = std::min<uint64_t>(kChunk, count - done);
      const std::vector<unsigned char> chunk = read(offset + done, step);
      consume(chunk.data(), chunk.size());
      done += step;
    }
  }

private:
  std::ifstream in_;
  uint64_t size_ = 0;
};

struct Entry {
  std::string name;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t compressedSize = 0;
  uint64_t localHeader = 0;
};

struct Directory {
  uint64_t offset = 0;
  uint64_t entries = 0;
};

Directory findDirectory(ArchiveFile &file) {
  const uint64_t tail = std::min<uint64_t>(file.size(), 22 + 65535);
  const std::vector<unsigned char> end = file.read(file.size() - tail, tail);
  for (size_t at = end.size() >= 22 ? end.size() - 22 + 1 : 0; at-- > 0;) {
    if (readLE(&end[at], 4) != kEndOfCentralDirectory)
      continue;
    Directory directory{readLE(&end[at + 16], 4), readLE(&end[at + 10], 2)};
    const uint64_t record = file.size() - tail + at;
    if (record >= 20) {
      const std::vector<unsigned char> locator = file.read(record - 20, 20);
      if (readLE(locator.data(), 4) == kZip64EndLocator) {
        const std::vector<unsigned char> end64 = file.read(readLE(&locator[8], 8), 56);
        if (readLE(end64.data(), 4) != kZip64End)
          throw Damaged{"its zip64 end record is missing"};
        directory = {readLE(&end64[48], 8), readLE(&end64[32], 8)};
      }
    }
    return directory;
  }
  throw Damaged{"it has no zip end record (truncated?)"};
}

// Sizes and offsets of 0xFFFFFFFF are in the zip64 extra field, in this order.
void readZip64Extra(const unsigned char *extra, size_t length, uint64_t uncompressed,
                    Entry &entry) {
  for (size_t at = 0; at + 4 <= length;) {
    const uint16_t id = static_cast<uint16_t>(readLE(extra + at, 2));
    const size_t size = readLE(extra + at + 2, 2);
    if (id == kZip64Extra) {
      size_t field = at + 4;
      const auto next = [&](uint64_t &value) {
        if (value == 0xFFFFFFFF && field + 8 <= at + 4 + size) {
          value = readLE(extra + field, 8);
          field += 8;
        }
      };
      next(uncompressed);
      next(entry.compressedSize);
      next(entry.localHeader);
      return;
    }
    at += 4 + size;
  }
}

std::vector<Entry> readEntries(ArchiveFile &file, const Directory &directory) {
  std::vector<Entry> entries;
  uint64_t at = directory.offset;
  for (uint64_t i = 0; i < directory.entries; ++i) {
    const std::vector<unsigned char> header = file.read(at, 46);
    if (readLE(header.data(), 4) != kCentralHeader)
      throw Damaged{"its zip central directory is damaged"};
    const uint64_t nameLength = readLE(&header[28], 2);
    const uint64_t extraLength = readLE(&header[30], 2);
    const uint64_t commentLength = readLE(&header[32], 2);
    const std::vector<unsigned char> rest = file.read(at + 46, nameLength + extraLength);
    Entry entry;
    entry.name.assign(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(nameLength));
    entry.method = static_cast<uint16_t>(readLE(&header[10], 2));
    entry.crc = static_cast<uint32_t>(readLE(&header[16], 4));
    entry.compressedSize = readLE(&header[20], 4);
    entry.localHeader = readLE(&header[42], 4);
    readZip64Extra(rest.data() + nameLength, extraLength, readLE(&header[24], 4), entry);
    entries.push_back(std::move(entry));
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

uint64_t dataOffset(ArchiveFile &file, const Entry &entry) {
  const std::vector<unsigned char> local = file.read(entry.localHeader, 30);
  if (readLE(local.data(), 4) != kLocalHeader)
    throw Damaged{"the local header of entry '" + entry.name + "' is damaged"};
  return entry.localHeader + 30 + readLE(&local[26], 2) + readLE(&local[28], 2);
}

uint32_t storedCrc(ArchiveFile &file, const Entry &entry, uint64_t offset) {
  uLong crc = crc32(0L, Z_NULL, 0);
  file.stream(offset, entry.compressedSize, [&](const unsigned char *data, size_t size) {
    crc = crc32(crc, data, static_cast<uInt>(size));
  });
  return static_cast<uint32_t>(crc);
}

uint32_t deflatedCrc(ArchiveFile &file, const Entry &entry, uint64_t offset) {
  z_stream stream{};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK)
    throw Damaged{"zlib cannot inflate entry '" + entry.name + "'"};
  const std::unique_ptr<z_stream, int (*)(z_streamp)> guard(&stream, inflateEnd);
  std::vector<unsigned char> out(kChunk);
  uLong crc = crc32(0L, Z_NULL, 0);
  int status = Z_OK;
  file.stream(offset, entry.compressedSize, [&](const unsigned char *data, size_t size) {
    stream.next_in = const_cast<unsigned char *>(data);
    stream.avail_in = static_cast<uInt>(size);
    while (stream.avail_in > 0 && status != Z_STREAM_END) {
      stream.next_out = out.data();
      stream.avail_out = static_cast<uInt>(out.size());
      status = inflate(&stream, Z_NO_FLUSH);
      if (status != Z_OK && status != Z_STREAM_END)
        throw Damaged{"entry '" + entry.name + "' does not inflate (its bytes are damaged)"};
      crc = crc32(crc, out.data(), static_cast<uInt>(out.size() - stream.avail_out));
    }
  });
  return static_cast<uint32_t>(crc);
}

std::string hex(uint32_t value) {
  char text[11];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

} // namespace

#endif

std::optional<std::string> findArchiveDamage(const std::string &path) {
#ifdef RDNA1_WITHOUT_ZLIB
  (void)path; // built without zlib (CMake said so): nothing to check with
  return std::nullopt;
#else
  try {
    ArchiveFile file(path);
    for (const Entry &entry : readEntries(file, findDirectory(file))) {
      if (entry.method != kStored && entry.method != kDeflated)
        return "entry '" + entry.name + "' uses zip compression method " +
               std::to_string(entry.method) + ", which cannot be checked";
      const uint64_t offset = dataOffset(file, entry);
      const uint32_t crc = entry.method == kStored ? storedCrc(file, entry, offset)
                                                   : deflatedCrc(file, entry, offset);
      if (crc != entry.crc)
        return "entry '" + entry.name + "' fails its CRC-32 check (stored " + hex(entry.crc) +
               ", computed " + hex(crc) + "): the file is damaged";
    }
  } catch (const Damaged &damaged) {
    return damaged.why;
  }
  return std::nullopt;
#endif
}

} // namespace rdna1::tool
