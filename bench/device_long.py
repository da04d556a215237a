#!/usr/bin/env python3
"""On a CUDA machine: (1) 20 SGD steps of a rewritten model track the original's losses;
(2) 10,000 inference and 1,000 training steps keep device, pinned and resident memory flat
from 10% of the run on (at most 1 MB device and pinned growth, 64 MB resident).

    device_long.py [--inference-steps N] [--training-steps N]
"""
import argparse
import os
import resource
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, 'python'))
sys.path.insert(0, os.path.join(HERE, os.pardir, 'samples'))
import rdna1  # noqa: E402
import sample_models  # noqa: E402


def train(model, shape, steps, device, dtype=torch.float32, lr=0.01):
    """Losses of `steps` SGD steps (momentum 0.9) on seeded random inputs, as train_rewritten.py."""
    model.to(device=device, dtype=dtype).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(steps):
        x = torch.randn(shape, generator=generator).to(device=device, dtype=dtype)
        optimizer.zero_grad()
        loss = model(x).square().mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def rss_mb():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pinned_mb():
    stats = torch.cuda.host_memory_stats() if hasattr(torch.cuda, 'host_memory_stats') else {}
    return stats.get('reserved_bytes.current', stats.get('allocated_bytes.current', 0)) / 2**20


def assert_memory_flat(what, steps, step):
    """Runs `step` `steps` times; device and pinned memory may grow by 1 MB and the resident set
    by 64 MB from 10% of the run to its end."""
    warm, marks = steps // 10, {}
    for index in range(1, steps + 1):
        step()
        if index in (warm, steps):
            torch.cuda.synchronize()
            marks[index] = (torch.cuda.memory_allocated() / 2**20, pinned_mb(), rss_mb())
    (device0, pinned0, resident0), (device1, pinned1, resident1) = marks[warm], marks[steps]
    print(f'{what}, {steps} steps (MB at step {warm} -> {steps}): device {device0:.1f} -> {device1:.1f}, '
          f'pinned {pinned0:.1f} -> {pinned1:.1f}, resident {resident0:.1f} -> {resident1:.1f}')
    assert device1 <= device0 + 1 and pinned1 <= pinned0 + 1 and resident1 <= resident0 + 64


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--inference-steps', type=int, default=10_000)
    parser.add_argument('--training-steps', type=int, default=1_000)
    args = parser.parse_args()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    workdir = tempfile.mkdtemp()
    original = os.path.join(workdir, 'resnet18.pt')
    sample_models.save('resnet18', 'scripted', original)
    shape = (8, 3, 64, 64)
    print(rdna1.runtime_info(), '| torch', torch.__version__, '|', torch.cuda.get_device_name())
    # The judge: the original in float64 on the host. Float32 runs drift from it as SGD
    # amplifies rounding; ours must drift no more than the original's own float32 runs.
    exact = train(torch.jit.load(original), shape, 20, 'cpu', torch.float64)
    drift = lambda losses: max(abs(a - b) / abs(b) for a, b in zip(losses, exact))  # noqa: E731
    cudnn = train(torch.jit.load(original, map_location='cuda'), shape, 20, 'cuda')
    with torch.backends.cudnn.flags(enabled=False):
        native = train(torch.jit.load(original, map_location='cuda'), shape, 20, 'cuda')
    print(f'training, 20 SGD steps, resnet18 b8 64x64: float64 losses {exact[0]:.4f} -> {exact[-1]:.4f}; '
          f'drift of float32 runs from float64: original with cuDNN {drift(cudnn):.2e}, '
          f'original with native CUDA kernels {drift(native):.2e}')
    for regions in ('auto', 'conv'):
        rewritten = os.path.join(workdir, f'resnet18.{regions}.pt')
        rdna1.rewrite(original, rewritten, regions)
        got = train(rdna1.load(rewritten, map_location='cuda'), shape, 20, 'cuda')
        print(f'  rewritten --regions={regions}: losses {got[0]:.4f} -> {got[-1]:.4f}, drift {drift(got):.2e}')
        assert drift(got) <= 2 * max(drift(cudnn), drift(native), 1e-4), drift(got)

    model = rdna1.load(os.path.join(workdir, 'resnet18.auto.pt'), map_location='cuda').eval()
    with torch.inference_mode():
        assert_memory_flat('inference', args.inference_steps, lambda: model(torch.randn(shape, device='cuda')))

    model = rdna1.load(os.path.join(workdir, 'resnet18.conv.pt'), map_location='cuda')
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def training_step():
        optimizer.zero_grad(set_to_none=True)
        model(torch.randn(shape, device='cuda')).square().mean().backward()
        optimizer.step()
    assert_memory_flat('training', args.training_steps, training_step)
    print('long runs: PASS')


if __name__ == '__main__':
    main()
