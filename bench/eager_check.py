#!/usr/bin/env python3
"""Eager mode on a CUDA machine (torch 2.x): ordinary training loops with rdna1.enable(), no rewrite.

For each model, one line: whether any cuDNN/MIOpen op or kernel ran under torch.profiler (forward
and backward), how far the whole state_dict is after 3 SGD steps from the original's (cuDNN,
TF32 off) next to the original's own distance with cuDNN off (the noise floor), and the training
step's time against the same model with torch.backends.cudnn.enabled = False (what users do
today). Bars (issue 26): no cuDNN/MIOpen; state within max(4 x floor, 1e-4); step time <= 1.10x,
grouped convolutions (resnext50_32x4d, regnet_y_800mf) <= 0.25x. Exits 1 if any bar fails.

    python3 bench/eager_check.py [--backend device] [--models resnet18,unet] [--steps 20]
"""
import argparse
import copy
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, 'python'))
sys.path.insert(0, os.path.join(HERE, os.pardir, 'samples'))
import rdna1  # noqa: E402
import sample_models  # noqa: E402

GROUPED = ('resnext50_32x4d', 'regnet_y_800mf')


class Crnn(nn.Module):
    """A CRNN text recogniser's shape (Shi et al.): VGG-style convolutions with batch norm over a
    32-pixel line image, then a two-layer bidirectional LSTM over its columns."""

    def __init__(self, classes=37):
        super().__init__()

        def block(i, o, pool):
            return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(inplace=True)] + (
                [nn.MaxPool2d(pool)] if pool else [])
        self.cnn = nn.Sequential(*block(1, 64, 2), *block(64, 128, 2), *block(128, 256, None),
                                 *block(256, 256, (2, 1)), *block(256, 512, None),
                                 *block(512, 512, (2, 1)), nn.Conv2d(512, 512, (2, 1)), nn.ReLU())
        self.rnn = nn.LSTM(512, 256, num_layers=2, bidirectional=True)
        self.head = nn.Linear(512, classes)

    def forward(self, x):
        f = self.cnn(x).squeeze(2).permute(2, 0, 1)  # [W, N, C]
        out, _ = self.rnn(f)
        return self.head(out)


def torchvision_model(name):
    import torchvision
    return lambda: getattr(torchvision.models, name)(weights=None)


MODELS = {
    'resnet18': (torchvision_model('resnet18'), (8, 3, 224, 224)),
    'mobilenet_v2': (torchvision_model('mobilenet_v2'), (8, 3, 224, 224)),
    'unet': (sample_models.SmallUNet, (2, 3, 256, 256)),
    'crnn': (Crnn, (8, 1, 32, 128)),
    'resnext50_32x4d': (torchvision_model('resnext50_32x4d'), (8, 3, 224, 224)),
    'regnet_y_800mf': (torchvision_model('regnet_y_800mf'), (8, 3, 224, 224)),
}


def train_step(model, x, optimizer):
    optimizer.zero_grad(set_to_none=True)
    out = model(x)
    loss = out.float().square().mean()
    loss.backward()
    optimizer.step()
    return loss


def trained_state(model, inputs):
    model = copy.deepcopy(model).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for x in inputs:
        train_step(model, x, optimizer)
    torch.cuda.synchronize()
    return model.state_dict()


def distance(state, reference):
    worst = 0.0
    for name, value in reference.items():
        other = state[name]
        if not value.is_floating_point():
            if not torch.equal(other, value):
                return float('inf')
            continue
        scale = max(1.0, value.abs().max().item())
        worst = max(worst, (other.double() - value.double()).abs().max().item() / scale)
    return worst


def step_time(model, x, steps):
    model = copy.deepcopy(model).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    for _ in range(3):
        train_step(model, x, optimizer)
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        train_step(model, x, optimizer)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def vendor_ops(model, x):
    """Names of profiled ops and kernels that belong to cuDNN or MIOpen, forward and backward."""
    model = copy.deepcopy(model).train()
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities) as prof:
        model(x).float().sum().backward()
        torch.cuda.synchronize()
    return sorted({e.name for e in prof.events()
                   if 'cudnn' in e.name.lower() or 'miopen' in e.name.lower()})


def check(name, backend, steps):
    factory, shape = MODELS[name]
    torch.manual_seed(0)
    model = factory().cuda()
    inputs = [torch.randn(shape, generator=torch.Generator().manual_seed(k)).cuda() for k in range(3)]
    reference = trained_state(model, inputs)
    torch.backends.cudnn.enabled = False
    floor = distance(trained_state(model, inputs), reference)
    baseline = step_time(model, inputs[0], steps)
    torch.backends.cudnn.enabled = True
    with rdna1.enabled(backend):
        reached = vendor_ops(model, inputs[0])
        state = distance(trained_state(model, inputs), reference)
        eager = step_time(model, inputs[0], steps)
    ratio = eager / baseline
    bar = 0.25 if name in GROUPED else 1.10
    failures = []
    if reached:
        failures.append(f'cuDNN/MIOpen ran: {", ".join(reached[:4])}')
    if not state <= max(4 * floor, 1e-4):
        failures.append(f'state_dict off by {state:.2e} (floor {floor:.2e})')
    if ratio > bar:
        failures.append(f'step {ratio:.2f}x > {bar}x')
    print(f'{name}: {"ok" if not failures else "FAIL"}; cudnn/miopen ops {len(reached)}; '
          f'state_dict after 3 steps {state:.2e} (cuDNN off vs on: {floor:.2e}); step '
          f'{eager * 1e3:.1f} ms vs {baseline * 1e3:.1f} ms with cuDNN off = {ratio:.2f}x (bar {bar}x)'
          + ('' if not failures else '; ' + '; '.join(failures)), flush=True)
    return not failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--backend', default='device', help="rdna1.enable's backend (default device: "
                        "on a GPU that is not AMD's, auto means vendor, the original kernels)")
    parser.add_argument('--models', default=','.join(MODELS))
    parser.add_argument('--steps', type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print('eager_check: no CUDA/ROCm device', file=sys.stderr)
        return 2
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f'torch {torch.__version__}, {torch.cuda.get_device_name()}, rdna1 backend {args.backend}', flush=True)
    results = [check(name, args.backend, args.steps) for name in args.models.split(',')]
    print(f'eager_check: {sum(results)} of {len(results)} models pass', flush=True)
    return 0 if all(results) else 1


if __name__ == '__main__':
    sys.exit(main())
