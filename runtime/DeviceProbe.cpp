#include <rdna1/DeviceProbe.h>

#include "HipProbe.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/macros/Macros.h>
#include <torch/version.h>

#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

extern char **environ;

namespace fs = std::filesystem;

namespace rdna1 {
namespace {

const char *env(const char *name) {
  const char *value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

int acceleratorCount() {
  const int hip = hipDeviceCount();
  if (hip > 0)
    return hip;
  try { // torch's cuda device type, which ROCm builds use too
    return c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->deviceCount();
  } catch (const std::exception &) {
    return 0; // a CPU-only torch registers no CUDA guard
  }
}

// Everything that could change the verdict: the device and its driver, torch, this runtime.
// (No string streams in this file: built against pip torch 2.11 they crash.)
std::string deviceKey(int index) {
  return "cuda:" + std::to_string(index) + " " + hipDeviceKey(index) +
         " torch " TORCH_VERSION " rdna1 " RDNA1_VERSION;
}

fs::path cacheDirectory() {
  if (const char *dir = env("RDNA1_CACHE_DIR"))
    return dir;
  if (const char *xdg = env("XDG_CACHE_HOME"))
    return fs::path(xdg) / "rdna1";
  if (const char *home = env("HOME"))
    return fs::path(home) / ".cache" / "rdna1";
  return fs::temp_directory_path() / "rdna1-cache";
}

fs::path cachePathFor(const std::string &key) {
  char name[40];
  std::snprintf(name, sizeof name, "probe-%016zx.txt", std::hash<std::string>{}(key));
  return cacheDirectory() / name;
}

bool readCache(const fs::path &path, const std::string &key, ProbeVerdict &verdict) {
  std::ifstream in(path);
  std::string verdictLine, keyLine, detailLine;
  if (!std::getline(in, verdictLine) || !std::getline(in, keyLine) ||
      !std::getline(in, detailLine) || keyLine != "key " + key)
    return false;
  verdict.deviceWorks = verdictLine == "verdict device";
  verdict.detail = detailLine.substr(detailLine.find(' ') + 1);
  verdict.cachePath = path.string();
  verdict.fromCache = true;
  return true;
}

void writeCache(const fs::path &path, const std::string &key, const ProbeVerdict &verdict) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  const fs::path temporary = path.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(temporary);
    out << "verdict " << (verdict.deviceWorks ? "device" : "host") << "\n"
        << "key " << key << "\n"
        << "detail " << verdict.detail << "\n";
    if (!out)
      return; // an unwritable cache only means probing again next time
  }
  fs::rename(temporary, path, ec);
}

std::string probeProgram() {
  if (const char *exe = env("RDNA1_PROBE_EXE"))
    return exe;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void *>(&probeDevice), &info) != 0 && info.dli_fname != nullptr) {
    const fs::path dir = fs::path(info.dli_fname).parent_path();
    for (const fs::path &candidate : {dir / "rdna1-probe", dir / ".." / "bin" / "rdna1-probe",
                                      dir / ".." / "libexec" / "rdna1" / "rdna1-probe"})
      if (::access(candidate.c_str(), X_OK) == 0)
        return candidate.string();
  }
  return "";
}

int timeoutSeconds() {
  const char *value = env("RDNA1_PROBE_TIMEOUT");
  const int seconds = value != nullptr ? std::atoi(value) : 0;
  return seconds > 0 ? seconds : 120;
}

// The probe program's own verdict line ("ok: ...", "mismatch: ...", "error: ..."):
// libraries may print warnings after it. Else the last line, whatever it says.
std::string verdictLine(const std::string &text) {
  std::string verdict, last;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \r") == std::string::npos)
      continue;
    last = line;
    for (const char *prefix : {"ok: ", "mismatch: ", "error: "})
      if (line.rfind(prefix, 0) == 0)
        verdict = line;
  }
  return verdict.empty() ? last : verdict;
}

// Runs the probe program on cuda:index; its verdict, from its exit and last line.
ProbeVerdict runChild(const std::string &program, int index) {
  ProbeVerdict verdict;
  int pipeFds[2];
  if (::pipe(pipeFds) != 0) {
    verdict.detail = std::string("cannot start the probe: ") + std::strerror(errno);
    return verdict;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipeFds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipeFds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipeFds[0]);
  const std::string device = "cuda:" + std::to_string(index);
  std::vector<char *> argv{const_cast<char *>(program.c_str()), const_cast<char *>("--device"),
                           const_cast<char *>(device.c_str()), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipeFds[1]);
  if (spawned != 0) {
    ::close(pipeFds[0]);
    verdict.detail = "cannot start the probe " + program + ": " + std::strerror(spawned);
    return verdict;
  }

  const int timeout = timeoutSeconds();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
  std::string output;
  bool open = true;
  bool timedOut = false;
  while (open) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timedOut = true;
      break;
    }
    pollfd fd{pipeFds[0], POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(left.count())) <= 0)
      continue;
    char buffer[4096];
    const ssize_t n = ::read(pipeFds[0], buffer, sizeof buffer);
    if (n > 0)
      output.append(buffer, static_cast<size_t>(n));
    else if (n == 0 || errno != EINTR)
      open = false;
  }
  ::close(pipeFds[0]);
  if (timedOut)
    ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  const std::string last = verdictLine(output);
  if (timedOut)
    verdict.detail = "the probe hung (no answer in " + std::to_string(timeout) + " s)";
  else if (WIFSIGNALED(status))
    verdict.detail = std::string("the probe crashed (") + strsignal(WTERMSIG(status)) + ")";
  else if (WEXITSTATUS(status) != 0 || last.rfind("ok", 0) != 0)
    verdict.detail = "the probe failed (exit " + std::to_string(WEXITSTATUS(status)) + "): " + last;
  else {
    verdict.deviceWorks = true;
    verdict.detail = "native kernels work: " + last;
  }
  return verdict;
}

} // namespace

// AMD's when HIP sees devices, or when the process has the HIP runtime loaded
// (a ROCm build of torch links it). (Asking torch's CUDA hooks instead crashed
// the process with pip torch 2.11.)
bool isAmdGpuMachine() {
#if defined(USE_ROCM)
  return true;
#elif defined(RDNA1_WITH_HIP)
  return hipDeviceCount() > 0; // our own HIP link answers for the machine
#else
  return ::dlsym(RTLD_DEFAULT, "hipGetDeviceCount") != nullptr;
#endif
}

ProbeVerdict probeDevice(int index, bool refresh) {
  if (const char *forced = env("RDNA1_PROBE_VERDICT")) {
    ProbeVerdict verdict;
    verdict.deviceWorks = std::strcmp(forced, "device") == 0;
    verdict.detail = std::string("forced by RDNA1_PROBE_VERDICT=") + forced;
    return verdict;
  }
  const std::string key = deviceKey(index);
  const fs::path path = cachePathFor(key);
  ProbeVerdict verdict;
  if (!refresh && readCache(path, key, verdict))
    return verdict;
  const std::string program = probeProgram();
  if (program.empty())
    verdict.detail = "the probe program rdna1-probe was not found (set RDNA1_PROBE_EXE)";
  else
    verdict = runChild(program, index);
  verdict.cachePath = path.string();
  writeCache(path, key, verdict);
  return verdict;
}

std::string describeProbe(bool refresh) {
  const int count = acceleratorCount();
  if (count == 0)
    return "no GPU (" + describeHipDevices() +
           "; torch sees no CUDA/ROCm device): backend auto runs convolutions on the host";
  const bool amd = isAmdGpuMachine();
  std::string out;
  for (int i = 0; i < count; ++i) {
    const ProbeVerdict verdict = probeDevice(i, refresh);
    out += (i ? "\ncuda:" : "cuda:") + std::to_string(i);
    const std::string hip = hipDeviceKey(i);
    if (!hip.empty())
      out += " (" + hip + ")";
    out += std::string(": ") + (verdict.deviceWorks ? "device" : "host") + " -- " + verdict.detail;
    if (!verdict.cachePath.empty())
      out += (verdict.fromCache ? "; cached in " : "; saved to ") + verdict.cachePath;
    out += std::string("; backend auto uses ") +
           (amd ? (verdict.deviceWorks ? "device" : "host") : "vendor (not an AMD GPU)");
  }
  return out;
}

} // namespace rdna1
