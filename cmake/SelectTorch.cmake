# Which torch the project builds against, and which Python runs its Python side.
#
# RDNA1_PYTHON names a Python; the project builds against the torch that Python imports
# (torch.utils.cmake_prefix_path, as torchaudio does) and its tests run with it. Without it,
# Debian's /usr/bin/python3 serves where it imports torch (python3-torch goes with libtorch-dev),
# and else find_package(Torch) alone decides (a libtorch without Python: CMAKE_PREFIX_PATH). Sets
# RDNA1_TORCH_VERSION (torch.__version__, or libtorch's version without a Python) and
# RDNA1_TORCH_HIP (torch.version.hip, empty for other builds).
set(rdna1_python_given FALSE)
if(RDNA1_PYTHON)
  set(rdna1_python_given TRUE)
else()
  find_program(RDNA1_DEBIAN_PYTHON python3 PATHS /usr/bin NO_DEFAULT_PATH)
  set(RDNA1_PYTHON "${RDNA1_DEBIAN_PYTHON}")
endif()

set(RDNA1_TORCH_VERSION "")
set(RDNA1_TORCH_HIP "")
if(RDNA1_PYTHON)
  execute_process(
    COMMAND "${RDNA1_PYTHON}" -c [=[
import torch, torch.utils
print(torch.__version__)
print(torch.utils.cmake_prefix_path)
print(int(torch.compiled_with_cxx11_abi()))
print(torch.version.hip or '')
]=]
    OUTPUT_VARIABLE rdna1_torch_facts ERROR_VARIABLE rdna1_torch_error
    RESULT_VARIABLE rdna1_torch_status OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rdna1_torch_status EQUAL 0 AND rdna1_python_given)
    string(REGEX REPLACE "\n$" "" rdna1_torch_error "${rdna1_torch_error}")
    string(REGEX REPLACE ".*\n" "" rdna1_torch_error "${rdna1_torch_error}")
    message(FATAL_ERROR "rdna1: ${RDNA1_PYTHON} cannot import torch (${rdna1_torch_error}); "
                        "install torch for it, or pass -DRDNA1_PYTHON=<a Python with torch>")
  endif()
endif()
if(RDNA1_PYTHON AND rdna1_torch_status EQUAL 0)
  set(RDNA1_PYTHON "${RDNA1_PYTHON}" CACHE FILEPATH
      "The Python whose torch to build against and that runs the Python tests (default: Debian's)")
  string(REPLACE "\n" ";" rdna1_torch_facts "${rdna1_torch_facts}")
  list(GET rdna1_torch_facts 0 RDNA1_TORCH_VERSION)
  list(GET rdna1_torch_facts 1 rdna1_torch_prefix)
  list(GET rdna1_torch_facts 2 RDNA1_TORCH_CXX11_ABI)
  list(LENGTH rdna1_torch_facts rdna1_fact_count)
  if(rdna1_fact_count GREATER 3)
    list(GET rdna1_torch_facts 3 RDNA1_TORCH_HIP)
  endif()
  # Debian's python3-torch keeps its CMake files with libtorch-dev, not under the Python package.
  # Its libraries come first too: TorchConfig's find_library would otherwise take a libtorch.so
  # from the system's folders (Debian's libtorch-dev) before its own.
  if(EXISTS "${rdna1_torch_prefix}/Torch/TorchConfig.cmake")
    get_filename_component(rdna1_torch_root "${rdna1_torch_prefix}/../.." ABSOLUTE)
    list(PREPEND CMAKE_PREFIX_PATH "${rdna1_torch_prefix}" "${rdna1_torch_root}")
  endif()
endif()

find_package(Torch REQUIRED)
# Installed programs find a torch outside the system's folders (a Python's) where it was built.
set(RDNA1_TORCH_RPATH "")
if(NOT TORCH_INSTALL_PREFIX MATCHES "^/usr(/|$)")
  set(RDNA1_TORCH_RPATH "${TORCH_INSTALL_PREFIX}/lib")
endif()
if(NOT RDNA1_TORCH_VERSION)
  set(RDNA1_TORCH_VERSION "${Torch_VERSION}")
endif()

# Debian's LLVM and GoogleTest use the C++11 ABI; a torch built with the old one (pip wheels
# before 2.7) links with neither.
if(DEFINED RDNA1_TORCH_CXX11_ABI AND NOT RDNA1_TORCH_CXX11_ABI)
  message(STATUS "rdna1: torch ${RDNA1_TORCH_VERSION} uses the pre-C++11 ABI; building without the "
                 "CLI and the C++ tests, which need Debian's LLVM and GoogleTest")
  set(RDNA1_BUILD_TOOL OFF)
  set(RDNA1_BUILD_GTESTS OFF)
endif()
if(RDNA1_TORCH_HIP)
  set(rdna1_torch_hip_note ", HIP ${RDNA1_TORCH_HIP}")
endif()
message(STATUS "rdna1: building against torch ${RDNA1_TORCH_VERSION}${rdna1_torch_hip_note} "
               "(${TORCH_INSTALL_PREFIX})")
