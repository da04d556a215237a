// The crash-safe probe behind backend auto on AMD GPUs (public: the CLI and
// the Python package print its verdicts). The failures seen on
// these GPUs are hard faults and hangs, not exceptions, so a small set of
// convolutions (forward and backward, through the device backend) runs in a
// child process (the rdna1-probe program) under a timeout and is compared with
// the host's result there. Crash, hang, error or mismatch: host. The verdict
// is cached per device, driver, torch and runtime version in the user's cache
// directory (RDNA1_CACHE_DIR, else $XDG_CACHE_HOME/rdna1, else ~/.cache/rdna1).
//
// Environment: RDNA1_PROBE_VERDICT=device|host forces the answer;
// RDNA1_PROBE_EXE names the probe program (default: rdna1-probe beside the
// runtime library or in ../bin); RDNA1_PROBE_TIMEOUT in seconds (default 120).
#pragma once

#include <string>

namespace rdna1 {

struct ProbeVerdict {
  bool deviceWorks = false;
  std::string detail;    // why, in a few words
  std::string cachePath; // where the verdict is kept ("" when forced)
  bool fromCache = false;
};

// Whether the GPUs torch calls `cuda` here are AMD's (a ROCm build of torch,
// or HIP devices present).
bool isAmdGpuMachine();

// The verdict for accelerator `index` (torch's cuda:index); runs the probe
// unless a cached verdict exists and `refresh` is false.
ProbeVerdict probeDevice(int index, bool refresh = false);

// One line per accelerator (or one saying there is none): its verdict, where
// it is cached, and what backend auto picks there.
std::string describeProbe(bool refresh);

// One line on the HIP devices, never failing: e.g. "HIP: 1 device: gfx1010
// (RDNA1, AMD Radeon RX 5700 XT)", "HIP: no device (hipErrorNoDevice)" or
// "HIP: not built in".
std::string describeHipDevices();

} // namespace rdna1
