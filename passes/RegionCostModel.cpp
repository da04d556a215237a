#include "RegionCostModel.h"

#include <cstdio>

namespace rdna1::passes::cost {
namespace {

double sizeRatio(OpClass cls) {
  switch (cls) {
  case OpClass::Shrinking:
    return 0.25;
  case OpClass::Growing:
    return 4.0;
  default:
    return 1.0;
  }
}

// Host seconds per byte of the op's main input.
double hostSecondsPerByte(OpClass cls) {
  switch (cls) {
  case OpClass::Norm:
    return 2.0 / kHostBytesPerSecond;
  case OpClass::Shape:
  case OpClass::List:
    return 0.5 / kHostBytesPerSecond; // views are free, concatenation copies
  case OpClass::Growing:
    return sizeRatio(cls) / kHostBytesPerSecond;
  default:
    return 1.0 / kHostBytesPerSecond;
  }
}

} // namespace

EdgeChoice atEntry(OpClass cls, int activationInputs) {
  const double bus = 1.0 / kBusBytesPerSecond;
  const double host = activationInputs * bus + hostSecondsPerByte(cls);
  const double device = sizeRatio(cls) * bus;
  return {cls == OpClass::Conv || host < device, host, device};
}

EdgeChoice atExit(OpClass cls, int regionInputs) {
  const double bus = 1.0 / kBusBytesPerSecond;
  const double host = hostSecondsPerByte(cls) + sizeRatio(cls) * bus;
  const double device = regionInputs * bus;
  return {cls == OpClass::Conv || host < device, host, device};
}

std::string explain(const EdgeChoice &choice) {
  char text[160];
  std::snprintf(text, sizeof text, "%.3g ns/KB with it on the host, %.3g ns/KB on the device",
                choice.hostSeconds * 1e12, choice.deviceSeconds * 1e12);
  return text;
}

} // namespace rdna1::passes::cost
