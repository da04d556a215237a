# Sanitizer builds for scripts/sanitize.sh and the asan/tsan presets (CMakePresets.json).
# Only our code is instrumented: Debian's libtorch is not rebuilt, so the runtime
# suppressions in tests/sanitizers/ cover what its uninstrumented code does.
set(RDNA1_SANITIZE "" CACHE STRING
    "Instrument the build: address (ASan+UBSan+LSan), thread (TSan), or empty for none")
set_property(CACHE RDNA1_SANITIZE PROPERTY STRINGS "" address thread)
option(RDNA1_BUILD_FUZZERS "Build the libFuzzer targets (needs clang)" OFF)

if(RDNA1_SANITIZE STREQUAL "address")
  # UBSan findings abort like ASan's, so a test run cannot pass over them. No
  # vptr checks: they reference the typeinfo of every polymorphic class they
  # see, and libtorch does not export all of it (c10::DynamicType): links fail.
  set(RDNA1_SANITIZER_FLAGS
      -fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=undefined)
elseif(RDNA1_SANITIZE STREQUAL "thread")
  set(RDNA1_SANITIZER_FLAGS -fsanitize=thread)
elseif(NOT RDNA1_SANITIZE STREQUAL "")
  message(FATAL_ERROR "RDNA1_SANITIZE must be address, thread or empty, not '${RDNA1_SANITIZE}'")
endif()

if(RDNA1_SANITIZER_FLAGS)
  # Frame pointers give the sanitizers' fast unwinder whole stacks.
  add_compile_options(${RDNA1_SANITIZER_FLAGS} -fno-omit-frame-pointer)
  add_link_options(${RDNA1_SANITIZER_FLAGS})
endif()

if(RDNA1_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "RDNA1_BUILD_FUZZERS needs clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  # Coverage feedback from everything the fuzz target reaches in our libraries.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
