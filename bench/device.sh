#!/usr/bin/env bash
# The device machine's one script: build the runtime against the local (pip) torch, then run the
# named steps in order (default: check bench). Logs go to $OUT when set (the device tool's result
# folder), else build-device/out.
#
#   pipinstall `pip install --no-build-isolation ./python` into a fresh venv that sees this
#              machine's torch, and the installed package's resnet18 check on the GPU with
#              backends host and device (tests/install/test_pip_install.sh)
#   eager      rdna1.enable() on eager training loops: no cuDNN/MIOpen, state after 3 steps, step
#              time against cuDNN off (eager_check.py --backend device; EAGER_ARGS)
#   export     exported programs rewritten, backends device and host: no cuDNN/MIOpen, state after
#              3 steps, step time against cuDNN off; an AOTInductor package run from C++
#              (export_check.py; EXPORT_ARGS)
#   check      a rewritten resnet18 never reaches cuDNN/MIOpen and matches (device_check.py)
#   bench      host-path benchmark (benchmark.py; BENCH_ARGS for its options)
#   probe      the device probe's verdict for each GPU (rdna1.probe, refreshed)
#   state      zoo models with batch norm: training-mode state_dict after --regions auto, max and
#              conv matches the original on the GPU (device_zoo.py --training-state-only)
#   statefamilies  the same, one zoo model per family (--set families)
#   devzoo     one zoo model per family and the model shapes with backend device: no cuDNN/MIOpen,
#              0 bytes across the bus, accuracy as the original's (device_zoo.py --backend device;
#              DEVZOO_ARGS replaces '--set families', e.g. '--only zoo --no-giants' for the whole zoo)
#   zoo        device_zoo.py with ZOO_ARGS (the whole zoo, host backend, by default)
#   long       long runs and CUDA training parity (device_long.py)
#   backends   backend device against the original with the DNN library off (backends.py)
#   regions    host regions on the pure CNNs: copies per forward, time against the CPU (regions.py;
#              REGIONS_ARGS go after its default)
#   hostprofile  where a host-path row's CPU time goes, ours beside the CPU model, and the bus's
#              pinned bandwidth each way (profile_host.py; HOSTPROFILE_ARGS)
#   accuracy   inference with backend device against float64, beside the original's with cuDNN
#              (inference_accuracy.py; ACCURACY_ARGS)
#   convlayers each distinct convolution shape of a model alone, backend device against cuDNN
#              without TF32 and cuDNN off, forward and forward+backward (conv_layers.py;
#              CONVLAYERS_ARGS, default the UNet)
#   formulations  candidate ATen formulations of a 3x3 stride-1 convolution on the UNet's and
#              resnet18's layer shapes against cuDNN and the device backend, forward
#              (conv_formulations.py; FORMULATIONS_ARGS)
#   cudagraph  a rewritten model captured in a CUDA graph with backend device: replay against the
#              uncaptured run, both timed beside the original's (cuda_graph_check.py; CUDAGRAPH_ARGS)
#   profile    where the GPU time of slow backends rows goes (profile_step.py; PROFILE_ARGS)
#   diagnose   where a zoo model's gradients go off with backend device: whole-model variants,
#              each layer alone, the rdna1 ops patched into the eager model block by block
#              (diagnose_model.py; DIAGNOSE_ARGS, default resnet101)
#
# Models are made and rewritten there (rdna1.rewrite needs no LLVM).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build-device/out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release -DRDNA1_PYTHON="$(command -v python3)" \
  -DRDNA1_BUILD_TOOL=OFF -DRDNA1_WITH_HIP=OFF -DRDNA1_BUILD_TESTS=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5 >"$out/configure.log" 2>&1 ||
  { tail -40 "$out/configure.log"; exit 1; }
cmake --build build-device -j16 >"$out/build.log" 2>&1 || { grep -A5 error "$out/build.log" | head -60; exit 1; }
echo "built $(ls build-device/lib/librdna1_runtime.so) against torch $(python3 -c 'import torch; print(torch.__version__)')"
export RDNA1_RUNTIME=$PWD/build-device/lib/librdna1_runtime.so
export PYTHONPATH=$PWD/python

status=0
step() { # step NAME COMMAND...: runs it, logs to $out/NAME.log, remembers a failure
  local name=$1 start=$SECONDS
  shift
  echo "=== $name: $*"
  "$@" 2>&1 | grep -v -i -E '^[^ ]*warn|^ +warnings?\.' | tee "$out/$name.log"
  local result=${PIPESTATUS[0]}
  echo "=== $name: exit $result after $((SECONDS - start)) s"
  ((result == 0)) || status=1
}

for name in "${@:-check bench}"; do
  for s in $name; do
    case $s in
      check)
        python3 samples/make_samples.py build-device/samples --only resnet18 >/dev/null
        python3 -c 'import rdna1; print(rdna1.rewrite("build-device/samples/resnet18_scripted.pt", "build-device/samples/resnet18_scripted.rdna1.pt"))'
        step check python3 bench/device_check.py build-device/samples/resnet18_scripted.rdna1.pt ;;
      pipinstall)
        CMAKE_GENERATOR=Ninja RDNA1_CMAKE_ARGS="-DRDNA1_WITH_HIP=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5" \
          step pipinstall env -u RDNA1_RUNTIME -u PYTHONPATH tests/install/test_pip_install.sh \
          "$(command -v python3)" "$PWD" --device cuda --backends host,device ;;
      export) step export python3 bench/export_check.py ${EXPORT_ARGS:-} ;;
      eager) step eager python3 bench/eager_check.py --backend device ${EAGER_ARGS:-} ;;
      bench) step bench python3 bench/benchmark.py --out "$out" ${BENCH_ARGS:-} ;;
      probe) step probe python3 -c 'import rdna1; print(rdna1.probe(True)); print(rdna1.probe())' ;;
      state) step state python3 bench/device_zoo.py --only zoo --training-state-only ${STATE_ARGS:-} ;;
      statefamilies) step statefamilies python3 bench/device_zoo.py --only zoo --set families --training-state-only ;;
      devzoo) step devzoo python3 bench/device_zoo.py --backend device ${DEVZOO_ARGS:---set families} ;;
      zoo) step zoo python3 bench/device_zoo.py ${ZOO_ARGS:-} ;;
      long) step long python3 bench/device_long.py ;;
      regions) step regions python3 bench/regions.py ${REGIONS_ARGS:-} --out "$out" ;;
      hostprofile) step hostprofile python3 bench/profile_host.py ${HOSTPROFILE_ARGS:-} ;;
      profile) step profile python3 bench/profile_step.py ${PROFILE_ARGS:-} ;;
      diagnose) step diagnose python3 bench/diagnose_model.py ${DIAGNOSE_ARGS:-resnet101} ;;
      accuracy) step accuracy python3 bench/inference_accuracy.py ${ACCURACY_ARGS:-} ;;
      convlayers) step convlayers python3 bench/conv_layers.py ${CONVLAYERS_ARGS:-} ;;
      formulations) step formulations python3 bench/conv_formulations.py ${FORMULATIONS_ARGS:-} ;;
      cudagraph) step cudagraph python3 bench/cuda_graph_check.py ${CUDAGRAPH_ARGS:-} ;;
      backends) step backends python3 bench/backends.py --out "$out" ${BACKENDS_ARGS:-} ;;
      *) echo "device.sh: unknown step '$s'" >&2; exit 2 ;;
    esac
  done
done
exit $status
