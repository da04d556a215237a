#!/usr/bin/env python3
"""Where a model's convolution time goes, layer by layer: every distinct convolution shape of the
model (hooked from one eager forward), timed alone as rdna1::conv with backend device against ATen's
convolution with cuDNN (TF32 off, as MIOpen on RDNA1) and with cuDNN off, forward and forward +
backward, in alternation. Rows sorted by the device's time times the layer's count, so the top
rows are where a new formulation pays.

    conv_layers.py [--model unet] [--batch 2] [--top 20] [--device cuda]
"""
import argparse
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import backends  # noqa: E402  (models)
import benchmark  # noqa: E402
import rdna1  # noqa: E402


def layer_shapes(model, example):
    """{(input shape, weight shape, stride, padding, dilation, groups, transposed, output padding,
    bias): count} of the model's Conv*d layers in one forward."""
    shapes = {}

    def record(module, inputs, _):
        transposed = isinstance(module, torch.nn.modules.conv._ConvTransposeNd)
        key = (tuple(inputs[0].shape), tuple(module.weight.shape), module.stride, module.padding,
               module.dilation, module.groups, transposed,
               tuple(module.output_padding) if transposed else (0,) * len(module.stride),
               module.bias is not None)
        shapes[key] = shapes.get(key, 0) + 1

    # padding='same'/'valid' layers are left out: torch.convolution takes numbers only.
    hooks = [m.register_forward_hook(record) for m in model.modules()
             if isinstance(m, torch.nn.modules.conv._ConvNd) and not isinstance(m.padding, str)]
    with torch.no_grad():
        model(example)
    for hook in hooks:
        hook.remove()
    return shapes


def timed(step, device):
    """ms of one synchronised step()."""
    benchmark.sync(device)
    start = time.perf_counter()
    step()
    benchmark.sync(device)
    return (time.perf_counter() - start) * 1e3


def measure(key, device, rounds):
    shape, weight_shape, stride, padding, dilation, groups, transposed, output_padding, has_bias = key
    x = torch.randn(shape, device=device, requires_grad=True)
    w = torch.randn(weight_shape, device=device, requires_grad=True)
    b = torch.randn(weight_shape[1] * groups if transposed else weight_shape[0], device=device,
                    requires_grad=True) if has_bias else None
    args = (list(stride), list(padding), list(dilation))

    def aten():
        return torch.convolution(x, w, b, args[0], args[1], args[2], transposed, list(output_padding), groups)

    def ours():
        return torch.ops.rdna1.conv(x, w, b, args[0], args[1], args[2], transposed, list(output_padding), groups)

    def forward(conv):
        def step():
            with torch.no_grad():
                conv()
        return step

    def training(conv):
        def step():
            out = conv()
            out.backward(torch.ones_like(out))
        return step

    settings = {'vendor32': lambda: backends.DnnLibrary(True, tf32=False),
                'nodnn': lambda: backends.DnnLibrary(False),
                'device': lambda: backends.Backend('device')}
    convs = {'vendor32': aten, 'nodnn': aten, 'device': ours}
    ms = {}
    for mode, wrap in (('fwd', forward), ('fwd+bwd', training)):
        for name in settings:  # warm-up, cuDNN's algorithm search included
            with settings[name]():
                for _ in range(3):
                    wrap(convs[name])()
        samples = {name: [] for name in settings}
        for _ in range(rounds):
            for name in settings:
                with settings[name]():
                    samples[name].append(timed(wrap(convs[name]), device))
        for name, values in samples.items():
            ms[(mode, name)] = statistics.median(values)
    return ms


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='unet')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--top', type=int, default=20)
    parser.add_argument('--rounds', type=int, default=15)
    parser.add_argument('--device', default='cuda')
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    rdna1.load_runtime()
    factory, shape = benchmark.MODELS[args.model]
    torch.manual_seed(0)
    model = factory().eval().to(args.device)
    shapes = layer_shapes(model, torch.randn((args.batch,) + shape, device=args.device))
    rows = []
    for key, count in shapes.items():
        ms = measure(key, args.device, args.rounds)
        rows.append((ms[('fwd+bwd', 'device')] * count, key, count, ms))
    rows.sort(key=lambda row: row[0], reverse=True)
    print(f'{args.model} b{args.batch}: {len(shapes)} distinct convolution shapes, {sum(shapes.values())} layers')
    print('| input | weight | stride, padding, dilation, groups | transposed | count | fwd vendor32 ms | fwd nodnn ms '
          '| fwd device ms | fwd device/vendor32 | fwd+bwd vendor32 ms | fwd+bwd device ms | fwd+bwd device/vendor32 |')
    print('|' + ' --- |' * 12)
    for _, key, count, ms in rows[:args.top]:
        shape, weight_shape, stride, padding, dilation, groups, transposed, *_ = key
        f32, fn, fd = ms[('fwd', 'vendor32')], ms[('fwd', 'nodnn')], ms[('fwd', 'device')]
        t32, td = ms[('fwd+bwd', 'vendor32')], ms[('fwd+bwd', 'device')]
        print(f'| {list(shape)} | {list(weight_shape)} | {stride}, {padding}, {dilation}, {groups} | {transposed} '
              f'| {count} | {f32:.3f} | {fn:.3f} | {fd:.3f} | {fd / f32:.2f} | {t32:.3f} | {td:.3f} | {td / t32:.2f} |',
              flush=True)


if __name__ == '__main__':
    main()
