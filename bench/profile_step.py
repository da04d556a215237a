#!/usr/bin/env python3
"""Where a step's GPU time goes: the original with the DNN library off (nodnn) beside the rewritten
model with backend device, each step profiled with torch.profiler after warm-up, the kernels and
ops with the most GPU time listed side by side. For finding why a backends.py row is slow.

    profile_step.py [--jobs convnext_tiny:infer:8,unet:train:2] [--top 15]
"""
import argparse
import os
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import backends  # noqa: E402  (its models, on top of benchmark's)
import benchmark  # noqa: E402
import rdna1  # noqa: E402

SORT_BY_CPU = False


def gpu_time_us(event):
    if SORT_BY_CPU:
        return event.self_cpu_time_total
    for key in ('self_device_time_total', 'self_cuda_time_total'):
        if hasattr(event, key):
            return getattr(event, key)
    return 0.0


KERNELS_ONLY = False
SHAPES = False


def is_kernel(event):
    """A GPU kernel or copy, not the host op that launched it (whose self device time repeats its
    kernels' time)."""
    return str(getattr(event, 'device_type', '')).endswith('CUDA')


def profile(step, make, steps=3):
    for _ in range(3):
        step(make())
    torch.cuda.synchronize()
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities, record_shapes=SHAPES) as prof:
        for _ in range(steps):
            step(make())
        torch.cuda.synchronize()
    averages = prof.key_averages(group_by_input_shape=SHAPES)
    key = (lambda e: f'{e.key} {e.input_shapes}') if SHAPES else (lambda e: e.key)
    events = [(gpu_time_us(e) / steps, e.count // steps, key(e)) for e in averages
              if not KERNELS_ONLY or is_kernel(e)]
    events = [e for e in events if e[0] > 0]
    events.sort(reverse=True)
    return sum(e[0] for e in events), events


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--jobs', default='convnext_tiny:infer:8,unet:train:2')
    parser.add_argument('--top', type=int, default=15)
    parser.add_argument('--cpu', action='store_true', help='host (launch) time instead of GPU time')
    parser.add_argument('--kernels', action='store_true', help='GPU kernels and copies only, not the ops '
                        'that launched them (their sum is the GPU busy time)')
    parser.add_argument('--shapes', action='store_true', help='group ops by their input shapes')
    parser.add_argument('--baseline', default='nodnn', choices=['nodnn', 'vendor', 'vendor32'],
                        help='the original with the DNN library off, on, or on without TF32')
    args = parser.parse_args()
    global SORT_BY_CPU, KERNELS_ONLY, SHAPES
    SORT_BY_CPU, KERNELS_ONLY, SHAPES = args.cpu, args.kernels, args.shapes
    with tempfile.TemporaryDirectory() as workdir:
        for job in args.jobs.split(','):
            name, mode, batch = job.split(':')
            _, load_gpu, load_ours, shape, how, _ = benchmark.build(name, workdir, 'cuda', 'auto')
            make = benchmark.make_inputs(shape, int(batch), 'cuda')
            step = benchmark.inference_step if mode == 'infer' else benchmark.training_step
            prepare = (lambda m: m.eval()) if mode == 'infer' else (lambda m: m.train())
            with backends.DnnLibrary(args.baseline != 'nodnn', tf32=args.baseline == 'vendor'):
                base_total, base = profile(step(prepare(load_gpu())), make)
            rdna1.set_backend('device')
            ours_total, ours = profile(step(prepare(load_ours())), make)
            rdna1.set_backend(None)
            print(f'\n## {name} ({how}) {mode} b{batch}: {"host" if args.cpu else "GPU"} time per step, self, summed over '
                  f'kernels and ops: {args.baseline} {base_total / 1e3:.2f} ms, device {ours_total / 1e3:.2f} ms')
            for label, events in ((args.baseline, base), ('device', ours)):
                print(f'### {label}')
                for us, count, key in events[:args.top]:
                    print(f'  {us / 1e3:8.3f} ms  x{count:<4d} {key[:160]}')


if __name__ == '__main__':
    main()
