#!/usr/bin/env python3
"""Times, in one run on a GPU, the rewritten model under the runtime's backends against the
original with the DNN library switched off (torch.backends.cudnn.enabled = False: on ROCm that also
switches MIOpen off), which is what RDNA1 users run today when ATen's own kernels work:

  nodnn    the original, DNN library off (the baseline every ratio is against)
  vendor   the original with cuDNN/MIOpen, PyTorch's defaults (cuDNN may use TF32 tensor cores)
  vendor32 the same without TF32 (torch.backends.cudnn.allow_tf32 = False): IEEE float32 as
           MIOpen computes it on RDNA1, which has no TF32 units; the stand-in for what a healthy
           RDNA1 GPU runs, and the reference of the device/vendor32 ratio
  device   the rewritten model, backend device: ATen's device kernels through the native
           convolution, never cuDNN/MIOpen (0 bytes across the bus)
  host     the rewritten model, backend host (convolutions on the CPU), for the grouped rows

Medians over rounds after warm-up, the original and rewritten steps timed in alternation within each
round on the same fresh random input (time_interleaved).
Prints a markdown table and writes it, with a chart (backends.png: each row's time relative to
nodnn), to --out.

    backends.py [--infer resnet18:1,resnet18:8,...] [--train resnet18:8,...] [--out DIR]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchmark  # noqa: E402  (models, timer, steps)
import rdna1  # noqa: E402

benchmark.MODELS.update({
    'efficientnet_b0': (benchmark.torchvision_model('efficientnet_b0'), (3, 224, 224)),
    'densenet121': (benchmark.torchvision_model('densenet121'), (3, 224, 224)),
    'shufflenet_v2_x1_0': (benchmark.torchvision_model('shufflenet_v2_x1_0'), (3, 224, 224)),
    'resnext50_32x4d': (benchmark.torchvision_model('resnext50_32x4d'), (3, 224, 224)),
    'regnet_y_800mf': (benchmark.torchvision_model('regnet_y_800mf'), (3, 224, 224)),
})


def deeplabv3():
    import torchvision
    model = torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None)
    return OutOnly(model)


class OutOnly(torch.nn.Module):
    """A segmentation model's 'out' tensor (scripting keeps dict outputs; timing wants one)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)['out']


benchmark.MODELS['deeplabv3_resnet50'] = (deeplabv3, (3, 384, 384))

INFER = ('resnet18:1,resnet18:8,resnet50:1,resnet50:8,mobilenet_v2:8,efficientnet_b0:8,convnext_tiny:8,'
         'densenet121:8,shufflenet_v2_x1_0:8,vit_b_16:8,deeplabv3_resnet50:1,unet:2,'
         'resnext50_32x4d:8,regnet_y_800mf:8')
TRAIN = 'resnet18:8,mobilenet_v2:8,unet:2,resnext50_32x4d:8,regnet_y_800mf:8'
GROUPED = ('resnext50_32x4d', 'regnet_y_800mf')


class DnnLibrary:
    """torch.backends.cudnn.enabled and .allow_tf32 for the duration of a measurement (this script
    is single-threaded)."""

    def __init__(self, enabled, tf32=True):
        self.enabled = enabled
        self.tf32 = tf32

    def __enter__(self):
        self.saved = torch.backends.cudnn.enabled, torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.enabled, torch.backends.cudnn.allow_tf32 = self.enabled, self.tf32

    def __exit__(self, *exc):
        torch.backends.cudnn.enabled, torch.backends.cudnn.allow_tf32 = self.saved


class Backend:
    """rdna1.set_backend(name) for the duration of a measurement."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        rdna1.set_backend(self.name)

    def __exit__(self, *exc):
        rdna1.set_backend(None)


def time_interleaved(candidates, make_input, device, warmup=3, max_rounds=15):
    """Median ms of each candidate step, timed in alternation on the same inputs, round after
    round: drift of clocks and host load over a run then falls on every candidate alike (timing
    them one after another made single-image rows swing by 30%), and each round starts one
    candidate later than the last, so that no candidate always follows the same one.
    candidates: {key: (step, setting)} with setting() a context manager put around every call of
    that step."""
    for step, setting in candidates.values():
        with setting():
            for _ in range(warmup):
                step(make_input())
    benchmark.sync(device)
    times = {key: [] for key in candidates}
    budget_s = benchmark.BUDGET_S * len(candidates)
    rounds = 0
    keys = list(candidates)
    while rounds < 3 or (rounds < max_rounds and sum(map(sum, times.values())) / 1e3 < budget_s):
        x = make_input()
        # Each round starts one candidate later, so that none always runs after the same one.
        for key in keys[rounds % len(keys):] + keys[:rounds % len(keys)]:
            step, setting = candidates[key]
            with setting():
                benchmark.sync(device)
                start = time.perf_counter()
                step(x)
                benchmark.sync(device)
                times[key].append((time.perf_counter() - start) * 1e3)
        rounds += 1
    return {key: statistics.median(values) for key, values in times.items()}


def measure(name, mode, batch, workdir, device, with_host):
    _, load_gpu, load_ours, shape, how, _ = benchmark.build(name, workdir, device, 'auto')
    make = benchmark.make_inputs(shape, batch, device)
    step = benchmark.inference_step if mode == 'infer' else benchmark.training_step
    prepare = (lambda m: m.eval()) if mode == 'infer' else (lambda m: m.train())
    ours = prepare(load_ours())
    ms = time_interleaved({
        'nodnn': (step(prepare(load_gpu())), lambda: DnnLibrary(False)),
        'vendor': (step(prepare(load_gpu())), lambda: DnnLibrary(True, tf32=True)),
        'vendor32': (step(prepare(load_gpu())), lambda: DnnLibrary(True, tf32=False)),
        'device': (step(ours), lambda: Backend('device')),
    }, make, device)
    with Backend('device'):
        counts = benchmark.counters_per_call(step(ours), make)
        counts['dnn_ops'] = dnn_library_ops(step(ours), make)
    if with_host:
        with Backend('host'):
            ms['host'] = benchmark.time_ms(step(prepare(load_ours())), make, device, budget_s=2.0, max_repeats=5)
    return ms, counts, how


def dnn_library_ops(step, make):
    """cuDNN/MIOpen ops and kernels that one profiled step of the rewritten model runs."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                            torch.profiler.ProfilerActivity.CUDA]) as prof:
        step(make())
        benchmark.sync('cuda' if torch.cuda.is_available() else 'cpu')
    return sum(e.count for e in prof.key_averages()
               if 'cudnn' in e.key.lower() or 'miopen' in e.key.lower())


def chart(rows, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    labels = [f'{name} {mode} b{batch}' for name, mode, batch, _ in rows]
    series = ['vendor', 'vendor32', 'device', 'host']
    fig, ax = plt.subplots(figsize=(11, 0.42 * len(rows) + 1.5))
    height = 0.8 / len(series)
    for k, key in enumerate(series):
        values = [ms[key] / ms['nodnn'] if key in ms else 0 for *_, ms in rows]
        ax.barh([i + k * height for i in range(len(rows))], values, height, label=key)
    ax.axvline(1.0, color='black', linewidth=1)
    ax.set_yticks([i + height for i in range(len(rows))])
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xscale('log')
    ax.set_xlabel('time relative to the original with the DNN library off (lower is faster)')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--infer', default=INFER)
    parser.add_argument('--train', default=TRAIN)
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--out', default=None)
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    print(rdna1.runtime_info(), '| torch', torch.__version__, '|',
          torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU',
          '| host threads', torch.get_num_threads(), flush=True)
    jobs = [(p.split(':')[0], 'infer', int(p.split(':')[1])) for p in args.infer.split(',') if p]
    jobs += [(p.split(':')[0], 'train', int(p.split(':')[1])) for p in args.train.split(',') if p]
    table = ['| model | step | batch | nodnn ms | vendor ms | vendor32 ms | device ms | host ms | device/nodnn '
             '| device/vendor32 | device/vendor | host/nodnn | bytes across the bus per step | cuDNN/MIOpen calls (device) |',
             '|' + ' --- |' * 14]
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name, mode, batch in jobs:
            ms, c, how = measure(name, mode, batch, workdir, args.device, name in GROUPED)
            moved = c['to_host_bytes'] + c['to_device_bytes'] + c['param_bytes']
            host = f"{ms['host']:.1f}" if 'host' in ms else '-'
            host_ratio = f"{ms['host'] / ms['nodnn']:.2f}" if 'host' in ms else '-'
            line = (f"| {name} ({how}) | {mode} | {batch} | {ms['nodnn']:.2f} | {ms['vendor']:.2f} "
                    f"| {ms['vendor32']:.2f} | {ms['device']:.2f} | {host} | {ms['device'] / ms['nodnn']:.2f} "
                    f"| {ms['device'] / ms['vendor32']:.2f} | {ms['device'] / ms['vendor']:.2f} | {host_ratio} "
                    f"| {moved:.0f} | {c['dnn_ops']} |")
            print(line, flush=True)
            table.append(line)
            rows.append((name, mode, batch, ms))
    print('\n' + '\n'.join(table))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, 'backends.md'), 'w') as f:
            f.write('\n'.join(table) + '\n')
        chart(rows, os.path.join(args.out, 'backends.png'))


if __name__ == '__main__':
    main()
