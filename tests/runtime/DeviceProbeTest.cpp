// The device probe's verdicts from stand-in probe programs: a crash, a hang, a
// failure and a mismatch all mean "host"; "ok" means "device"; verdicts are
// cached per device and refreshed on request; RDNA1_PROBE_VERDICT forces one.
// No GPU is needed: the probe program is replaced through RDNA1_PROBE_EXE.
#include <rdna1/DeviceProbe.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

class DeviceProbeTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rdna1-probe-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    ::setenv("RDNA1_CACHE_DIR", (dir_ / "cache").c_str(), 1);
    ::unsetenv("RDNA1_PROBE_VERDICT");
    ::unsetenv("RDNA1_PROBE_TIMEOUT");
  }
  void TearDown() override {
    ::unsetenv("RDNA1_PROBE_EXE");
    ::unsetenv("RDNA1_CACHE_DIR");
    ::unsetenv("RDNA1_PROBE_VERDICT");
    ::unsetenv("RDNA1_PROBE_TIMEOUT");
    fs::remove_all(dir_);
  }

  // A probe program that runs `body` as a shell script.
  void useProbe(const std::string &body) {
    const fs::path script = dir_ / "probe.sh";
    std::ofstream(script) << "#!/bin/sh\n" << body << "\n";
    fs::permissions(script, fs::perms::owner_all);
    ::setenv("RDNA1_PROBE_EXE", script.c_str(), 1);
  }

  fs::path dir_;
};

TEST_F(DeviceProbeTest, PassingProbeMeansDeviceAndIsCached) {
  useProbe("echo 'ok: 6 convolutions match'");
  const rdna1::ProbeVerdict first = rdna1::probeDevice(0, /*refresh=*/true);
  EXPECT_TRUE(first.deviceWorks);
  EXPECT_FALSE(first.fromCache);
  EXPECT_NE(first.detail.find("ok: 6 convolutions match"), std::string::npos) << first.detail;
  ASSERT_TRUE(fs::exists(first.cachePath));

  useProbe("kill -SEGV $$"); // not run: the cached verdict answers
  const rdna1::ProbeVerdict cached = rdna1::probeDevice(0);
  EXPECT_TRUE(cached.deviceWorks);
  EXPECT_TRUE(cached.fromCache);
  EXPECT_EQ(cached.cachePath, first.cachePath);

  const rdna1::ProbeVerdict refreshed = rdna1::probeDevice(0, /*refresh=*/true);
  EXPECT_FALSE(refreshed.deviceWorks);
  EXPECT_FALSE(rdna1::probeDevice(0).deviceWorks); // the cache now holds the new verdict
}

TEST_F(DeviceProbeTest, CrashMeansHost) {
  useProbe("kill -SEGV $$");
  const rdna1::ProbeVerdict verdict = rdna1::probeDevice(0, true);
  EXPECT_FALSE(verdict.deviceWorks);
  EXPECT_NE(verdict.detail.find("the probe crashed (Segmentation fault)"), std::string::npos)
      << verdict.detail;
}

TEST_F(DeviceProbeTest, HangMeansHostAfterTheTimeout) {
  useProbe("exec sleep 60");
  ::setenv("RDNA1_PROBE_TIMEOUT", "1", 1);
  const rdna1::ProbeVerdict verdict = rdna1::probeDevice(0, true);
  EXPECT_FALSE(verdict.deviceWorks);
  EXPECT_NE(verdict.detail.find("the probe hung (no answer in 1 s)"), std::string::npos)
      << verdict.detail;
}

TEST_F(DeviceProbeTest, MismatchOrErrorMeansHost) {
  useProbe("echo 'mismatch: depthwise 3x3 stride 2, output off by 0.5'; exit 3");
  const rdna1::ProbeVerdict verdict = rdna1::probeDevice(0, true);
  EXPECT_FALSE(verdict.deviceWorks);
  EXPECT_NE(verdict.detail.find("the probe failed (exit 3): mismatch: depthwise"),
            std::string::npos)
      << verdict.detail;

  useProbe("echo 'all good, but not the agreed answer'");
  EXPECT_FALSE(rdna1::probeDevice(0, true).deviceWorks);
}

TEST_F(DeviceProbeTest, MissingProgramMeansHost) {
  ::setenv("RDNA1_PROBE_EXE", (dir_ / "no-such-probe").c_str(), 1);
  const rdna1::ProbeVerdict verdict = rdna1::probeDevice(0, true);
  EXPECT_FALSE(verdict.deviceWorks);
  EXPECT_NE(verdict.detail.find("cannot start the probe"), std::string::npos) << verdict.detail;
}

TEST_F(DeviceProbeTest, OverrideForcesEitherAnswer) {
  useProbe("kill -SEGV $$");
  ::setenv("RDNA1_PROBE_VERDICT", "device", 1);
  EXPECT_TRUE(rdna1::probeDevice(0, true).deviceWorks);
  ::setenv("RDNA1_PROBE_VERDICT", "host", 1);
  const rdna1::ProbeVerdict forced = rdna1::probeDevice(0, true);
  EXPECT_FALSE(forced.deviceWorks);
  EXPECT_EQ(forced.detail, "forced by RDNA1_PROBE_VERDICT=host");
}

TEST_F(DeviceProbeTest, NoGpuHereSaysSo) {
  EXPECT_NE(rdna1::describeProbe(false).find("no GPU"), std::string::npos)
      << rdna1::describeProbe(false);
}

} // namespace
