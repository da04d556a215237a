#!/usr/bin/env python3
"""Inference accuracy of backend device (the native convolution and the one-kernel eval batch norm,
under torch.inference_mode) against float64 on the host, beside the original's with cuDNN (TF32 off
and on): relative 2-norm error of the output. Exits 1 where the rewrite's error exceeds twice the
original's without TF32, or where the rewrite runs a cuDNN/MIOpen op.

    inference_accuracy.py [--models resnet18:8,mobilenet_v2:8,densenet121:8,unet:2]
"""
import argparse
import copy
import os
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import backends  # noqa: E402  (models)
import benchmark  # noqa: E402


def relative_error(got, want):
    return ((got.double().cpu() - want).norm() / want.norm().clamp_min(1e-30)).item()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', default='resnet18:8,mobilenet_v2:8,densenet121:8,unet:2')
    args = parser.parse_args()
    print('| model | batch | original, TF32 off | original, TF32 on | device | cuDNN/MIOpen calls (device) | verdict |\n'
          '|' + ' --- |' * 7, flush=True)
    ok = True
    with tempfile.TemporaryDirectory() as workdir:
        for job in args.models.split(','):
            name, batch = job.split(':')
            eager, load_gpu, load_ours, shape, how, _ = benchmark.build(name, workdir, 'cuda', 'auto')
            x = benchmark.make_inputs(shape, int(batch), 'cuda')()
            with torch.inference_mode():
                want = copy.deepcopy(eager).double().eval()(x.double().cpu())
                original, ours = load_gpu().eval(), load_ours().eval()
                errors = {}
                for tf32 in (False, True):
                    with backends.DnnLibrary(True, tf32=tf32):
                        errors[tf32] = relative_error(original(x), want)
                with backends.Backend('device'):
                    ours(x)  # the first call computes the norms' scale and shift, the second keeps them
                    device = relative_error(ours(x), want)
                    calls = backends.dnn_library_ops(benchmark.inference_step(ours), lambda: x)
            passed = device <= 2 * errors[False] and calls == 0
            ok &= passed
            print(f"| {name} ({how}) | {batch} | {errors[False]:.2e} | {errors[True]:.2e} | {device:.2e} | {calls} "
                  f"| {'PASS' if passed else 'FAIL'} |", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
