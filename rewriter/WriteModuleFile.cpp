#include "WriteModuleFile.h"

#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <system_error>
#include <unistd.h>
#include <utility>

namespace rdna1::tool {
namespace {

[[noreturn]] void fail(int error, const char *what) {
  throw std::system_error(error, std::generic_category(), what);
}

// A file descriptor closed on every path out of writeModuleFile.
class OwnedFd {
public:
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  OwnedFd(const OwnedFd &) = delete;
  OwnedFd &operator=(const OwnedFd &) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

private:
  int fd_;
};

using ByteWriter = std::function<size_t(const void *, size_t)>;

// Creates `path`, lets `produce` write through a checked writer, flushes.
void writeCheckedFile(const std::string &path,
                      const std::function<void(const ByteWriter &)> &produce) {
  OwnedFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
  if (fd.get() < 0)
    fail(errno, "create");
  // libtorch's zip writer throws from its destructor when a write comes up
  // short, which aborts the process. So the writer always reports success,
  // remembers the first error, and skips writing after it.
  int firstError = 0;
  const ByteWriter writer = [&](const void *data, size_t size) -> size_t {
    const char *bytes = static_cast<const char *>(data);
    for (size_t done = 0; firstError == 0 && done < size;) {
      const ssize_t n = ::write(fd.get(), bytes + done, size - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        firstError = n < 0 ? errno : EIO;
      else
        done += static_cast<size_t>(n);
    }
    return size;
  };
  produce(writer);
  if (firstError != 0)
    fail(firstError, "write");
  if (::fsync(fd.get()) != 0)
    fail(errno, "fsync");
  if (::close(fd.release()) != 0)
    fail(errno, "close");
}

} // namespace

void writeModuleFile(const torch::jit::Module &module, const std::string &path,
                     const torch::jit::ExtraFilesMap &extra) {
  writeCheckedFile(
      path, [&](const ByteWriter &writer) { torch::jit::ExportModule(module, writer, extra); });
}

void copyFileBytes(const std::string &source, const std::string &path) {
  std::ifstream in(source, std::ios::binary);
  if (!in)
    fail(errno != 0 ? errno : EIO, "open");
  writeCheckedFile(path, [&](const ByteWriter &writer) {
    std::vector<char> chunk(1 << 20);
    while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0)
      writer(chunk.data(), static_cast<size_t>(in.gcount()));
    if (in.bad())
      fail(EIO, "read");
  });
}

} // namespace rdna1::tool
