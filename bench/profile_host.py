#!/usr/bin/env python3
"""Where a host-path row's time goes (issue 14: why a rewritten model runs slower than the same
model on the CPU): the rewritten model on the host backend beside the whole model on the CPU in
channels-last, each inference profiled with torch.profiler (CPU activity) after warm-up, the ops
with the most self CPU time listed side by side, and the bus: pinned copies of 4, 64 and 256 MB
each way, timed, and the minor
page faults per forward (MALLOC_TRIM_THRESHOLD_/MALLOC_MMAP_THRESHOLD_ change them: glibc's
returned memory is faulted in again inside ops).

    profile_host.py [--jobs shufflenet_v2_x1_0:8,resnet50:8] [--top 15]
    profile_host.py --jobs ''      (the bus alone)
    profile_host.py --jobs '' --train-jobs resnet18:8   (training steps, as benchmark.py's rows:
                                   the default rewrite, the copy the runtime takes, SGD)
"""
import argparse
import copy
import os
import resource
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import backends  # noqa: E402,F401  (adds the zoo models to benchmark.MODELS)
import benchmark  # noqa: E402
import rdna1  # noqa: E402


def profile(step, make, device, steps=5):
    for _ in range(3):
        step(make())
    benchmark.sync(device)
    # Minor page faults per forward, outside the profiler: glibc hands large freed blocks back to
    # the kernel, and the next forward faults them in again inside whichever op touches them
    # first (TorchScript frees a value inside the op that uses it last).
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        step(make())
    benchmark.sync(device)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step(make())
        benchmark.sync(device)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events) / steps / 1e3
    return [(e.key, e.self_cpu_time_total / steps / 1e3, e.count // steps) for e in events], total, faults


def seconds_per_copy(copy_once, repeats, wait_each=False):
    """Mean seconds of copy_once() after three for warm-up; with wait_each, each one's wait too."""
    for _ in range(3):
        copy_once()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        copy_once()
        if wait_each:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def bus_gbps(mb, direction, repeats=20):
    n = mb * (1 << 20) // 4
    host = torch.empty(n, pin_memory=True)
    dev = torch.empty(n, device='cuda')
    copy_once = (lambda: dev.copy_(host, non_blocking=True)) if direction == 'to device' else \
        (lambda: host.copy_(dev, non_blocking=True))
    return mb * (1 << 20) / seconds_per_copy(copy_once, repeats) / 1e9


def staged_vs_pageable_ms(mb, repeats=20):
    """A host tensor (pageable, as a host convolution leaves it) to the device, ms per copy
    including the wait for it: through pinned staging (copy into a pinned buffer, then one DMA;
    what the runtime does) against a plain pageable copy (the driver stages it itself)."""
    n = mb * (1 << 20) // 4
    src = torch.randn(n)
    dev = torch.empty(n, device='cuda')

    def staged():
        pinned = torch.empty(n, pin_memory=True)
        pinned.copy_(src)
        dev.copy_(pinned, non_blocking=True)

    def pageable():
        dev.copy_(src, non_blocking=True)

    return [seconds_per_copy(copy_once, repeats, wait_each=True) * 1e3 for copy_once in (staged, pageable)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--jobs', default='shufflenet_v2_x1_0:8,resnet50:8')
    parser.add_argument('--train-jobs', default='', help='model:batch pairs: training steps')
    parser.add_argument('--top', type=int, default=15)
    parser.add_argument('--train-also', default='',
                        help='comma-separated --regions modes (per-op, conv, max) whose training step '
                             'joins the alternation beside the default rewrite and the CPU')
    args = parser.parse_args()
    rdna1.set_backend('host')
    device = 'cuda'
    print(rdna1.runtime_info(), '| torch', torch.__version__, '|', torch.cuda.get_device_name(),
          '| host threads', torch.get_num_threads())
    for mb in (4, 64, 256):
        print(f'bus, pinned, {mb} MB: ' + ', '.join(
            f'{d} {bus_gbps(mb, d):.1f} GB/s' for d in ('to device', 'to host')))
    for mb in (1, 6, 25, 64):
        staged, pageable = staged_vs_pageable_ms(mb)
        print(f'host tensor to device, {mb} MB: through pinned staging {staged:.3f} ms, '
              f'pageable {pageable:.3f} ms')
    with tempfile.TemporaryDirectory() as work:
        for job in filter(None, args.jobs.split(',')):
            name, batch = job.split(':')
            eager, _, load_ours, shape, how, summary = benchmark.build(name, work, device)
            ours = load_ours()
            cpu = copy.deepcopy(eager).to(memory_format=torch.channels_last)
            rows = {
                'ours (host backend)': profile(benchmark.inference_step(ours),
                                               benchmark.make_inputs(shape, int(batch), device), device),
                'cpu, channels-last': profile(benchmark.inference_step(cpu),
                                              benchmark.make_inputs(shape, int(batch), 'cpu', True), 'cpu'),
            }
            # Which part costs: TorchScript itself (the scripted original on the CPU), the
            # rewritten graph without crossings (loaded on the CPU), and the crossings.
            _, load_original, _, _, _, _ = benchmark.build(name, work, 'cpu')
            scripted_cpu = load_original().to(memory_format=torch.channels_last)
            ours_on_cpu = rdna1.load(os.path.join(work, f'{name}.auto.rdna1.pt'), map_location='cpu').eval()
            cpu_input = benchmark.make_inputs(shape, int(batch), 'cpu', True)
            ms = benchmark.time_alternating({
                'eager on the CPU': (benchmark.inference_step(cpu), cpu_input, 'cpu'),
                'scripted original on the CPU': (benchmark.inference_step(scripted_cpu), cpu_input, 'cpu'),
                'rewritten, loaded on the CPU': (benchmark.inference_step(ours_on_cpu), cpu_input, 'cpu'),
                'rewritten, host backend from the GPU': (benchmark.inference_step(ours),
                                                         benchmark.make_inputs(shape, int(batch), device), device),
            })
            print(f'\n## {name} ({how}) b{batch}: ms per forward, timed in alternation: ' +
                  ', '.join(f'{k} {v:.1f}' for k, v in ms.items()))
            print(f'\n## {name} ({how}) b{batch}: self CPU ms per forward, summed over ops (threads overlap)')
            for label, (events, total, faults) in rows.items():
                print(f'\n{label}: {total:.1f} ms in all, {faults:.0f} minor page faults per forward')
                for key, ms, count in events[:args.top]:
                    print(f'  {ms:8.2f} ms  x{count:<4d} {key}')
        for job in filter(None, args.train_jobs.split(',')):
            profile_training(*job.split(':'), work, device, args.top,
                             [m for m in args.train_also.split(',') if m])


def profile_training(name, batch, work, device, top, also=()):
    """One SGD step of the default rewrite (the copy the runtime takes) beside the whole model
    trained on the CPU in channels-last (and files rewritten with the `also` modes): time in
    alternation, then each profiled."""
    eager, _, load_ours, shape, how, summary = benchmark.build(name, work, device)
    ours = benchmark.training_step(load_ours().train())
    cpu = benchmark.training_step(copy.deepcopy(eager).to(memory_format=torch.channels_last).train())
    ours_input = benchmark.make_inputs(shape, int(batch), device)
    cpu_input = benchmark.make_inputs(shape, int(batch), 'cpu', True)
    runs = {'ours (host backend)': (ours, ours_input, device),
            'cpu, channels-last': (cpu, cpu_input, 'cpu')}
    for mode in also:
        load_mode = benchmark.build(name, work, device, mode)[2]
        runs[f'ours, --regions={mode}'] = (benchmark.training_step(load_mode().train()), ours_input, device)
    ms = benchmark.time_alternating(runs)
    print(f'\n## {name} ({how}) b{batch}, training step: ms, timed in alternation: ' +
          ', '.join(f'{k} {v:.1f}' for k, v in ms.items()))
    counts = benchmark.counters_per_call(ours, ours_input)
    print('runtime counters per step (ours): ' + ', '.join(f'{k} {v:g}' for k, v in counts.items() if v))
    print(f'\n## {name} ({how}) b{batch}, training step: self CPU ms per step, summed over ops')
    for label, (step, make, on) in runs.items():
        events, total, faults = profile(step, make, on)
        print(f'\n{label}: {total:.1f} ms in all, {faults:.0f} minor page faults per step')
        for key, ms_, count in events[:top]:
            print(f'  {ms_:8.2f} ms  x{count:<4d} {key}')


if __name__ == '__main__':
    main()
