#!/usr/bin/env python3
"""How far float32 gradients of resnet18 (b8, 224², training mode, loss y.square().sum()) stray
from float64, per layout and per way of running it, on any machine (no GPU needed): the original
in NCHW and in channels-last on the CPU, and the rewritten model on the stand-in device (its host
side in channels-last) for several --regions modes. Prints the four worst tensors of each
(relative 2-norm error against the float64 original). It explains the host backend's accuracy
control in device_check.py: ATen's channels-last CPU kernels stray further than NCHW's.

    /usr/bin/python3 bench/gradient_numerics.py
"""
import copy
import os
import sys
import tempfile

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, 'python'))
import rdna1  # noqa: E402


def gradients(model, x):
    x = x.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    model(x).square().sum().backward()
    names = ['input'] + [n for n, _ in model.named_parameters()]
    return dict(zip(names, [x.grad] + [p.grad for p in model.parameters()]))


def main():
    torch.manual_seed(0)
    original = torchvision.models.resnet18(num_classes=10).train()
    x = torch.randn(8, 3, 224, 224)
    reference = gradients(copy.deepcopy(original).double(), x.double())

    def report(label, grads):
        errors = {k: ((grads[k].double() - r).norm() / r.norm().clamp_min(1e-30)).item()
                  for k, r in reference.items()}
        worst = sorted(errors.items(), key=lambda kv: -kv[1])[:4]
        print(f'{label:36s}', ', '.join(f'{k} {v:.2e}' for k, v in worst))

    report('original, NCHW', gradients(copy.deepcopy(original), x))
    report('original, channels-last', gradients(copy.deepcopy(original).to(memory_format=torch.channels_last),
                                                x.contiguous(memory_format=torch.channels_last)))
    with tempfile.TemporaryDirectory() as work:
        source = os.path.join(work, 'resnet18.pt')
        torch.jit.script(original).save(source)
        rdna1.set_stand_in_device(True)
        for regions in ('auto', 'per-op', 'conv'):
            out = os.path.join(work, f'resnet18.{regions}.pt')
            rdna1.rewrite(source, out, regions)
            report(f'rewritten --regions={regions}, stand-in', gradients(rdna1.load(out).train(), x))
        rdna1.set_stand_in_device(False)


if __name__ == '__main__':
    main()
