#include "HipProbe.h"

#include <sstream>

#ifdef RDNA1_WITH_HIP
#include <hip/hip_runtime_api.h>
#endif

namespace rdna1 {

#ifdef RDNA1_WITH_HIP
namespace {

bool isRdna1(const char *arch) {
  const std::string name(arch);
  return name.rfind("gfx1010", 0) == 0 || name.rfind("gfx1011", 0) == 0 ||
         name.rfind("gfx1012", 0) == 0;
}

} // namespace

std::string describeHipDevices() {
  int count = 0;
  const hipError_t status = hipGetDeviceCount(&count);
  if (status != hipSuccess)
    return std::string("HIP: no device (") + hipGetErrorName(status) + ")";
  std::ostringstream out;
  out << "HIP: " << count << (count == 1 ? " device" : " devices");
  for (int i = 0; i < count; ++i) {
    hipDeviceProp_t props{};
    if (hipGetDeviceProperties(&props, i) != hipSuccess)
      continue;
    out << (i == 0 ? ": " : ", ") << props.gcnArchName << " ("
        << (isRdna1(props.gcnArchName) ? "RDNA1, " : "") << props.name << ")";
  }
  return out.str();
}
int hipDeviceCount() {
  int count = 0;
  return hipGetDeviceCount(&count) == hipSuccess ? count : 0;
}

std::string hipDeviceKey(int index) {
  hipDeviceProp_t props{};
  if (hipGetDeviceProperties(&props, index) != hipSuccess)
    return "";
  int driver = 0;
  int runtime = 0;
  (void)hipDriverGetVersion(&driver);
  (void)hipRuntimeGetVersion(&runtime);
  return std::string(props.name) + " " + props.gcnArchName + " driver " + std::to_string(driver) +
         " hip " + std::to_string(runtime);
}
#else
std::string describeHipDevices() {
  return "HIP: not built in";
}

int hipDeviceCount() {
  return 0;
}

std::string hipDeviceKey(int /*index*/) {
  return "";
}
#endif

} // namespace rdna1
