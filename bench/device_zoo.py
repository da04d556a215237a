#!/usr/bin/env python3
"""On a CUDA (or ROCm) machine: the zoo and the model shapes of the CPU tests, with device inputs.

For every torchvision zoo model (tests/e2e/zoo_models.py, scripted) and every model shape
(tests/e2e/shape_models.py): rewrite with rdna1.rewrite, move to the GPU, run forward + backward
on device inputs and check that no cuDNN/MIOpen op runs (torch.profiler), that the runtime runs as
many host convolutions as the original's aten::_convolution calls, and that outputs and every
gradient match the original on the GPU (cuDNN, TF32 off) in the relative 2-norm. The shapes also
run channels-last, zero-size batches, float16 and bfloat16.

    device_zoo.py [--only zoo|shapes] [--shard K/N] [--models a,b]
"""
import argparse
import os
import sys
import tempfile
import time
import traceback

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, 'python'))
sys.path.insert(0, os.path.join(HERE, os.pardir, 'tests', 'e2e'))
import rdna1  # noqa: E402
import shape_models  # noqa: E402
import zoo_models  # noqa: E402

DNN_MARKERS = ('cudnn', 'miopen')
TOLERANCE = {torch.float32: 1e-3, torch.float16: 2e-2, torch.bfloat16: 8e-2}


def tensors_of(value):
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for key in sorted(value) for t in tensors_of(value[key])]
    return [t for item in value for t in tensors_of(item)]


def forward_backward(module, inputs, profile=False):
    """Outputs and the gradients of inputs and parameters, and (with `profile`) the op names run."""
    inputs = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities, enabled=profile) as prof:
        outputs = tensors_of(module(*inputs))
        generator = torch.Generator(device='cuda').manual_seed(1)
        weighted = [(y.float() * torch.randn(y.shape, generator=generator, device='cuda')).sum()
                    for y in outputs if y.requires_grad]
        wrt = [x for x in inputs if x.requires_grad] + [p for p in module.parameters() if p.requires_grad]
        grads = torch.autograd.grad(sum(weighted), wrt, allow_unused=True) if weighted else []
        torch.cuda.synchronize()
    names = sorted({event.name for event in prof.events()}) if profile else []
    return [y.detach() for y in outputs] + list(grads), names


def convolution_calls(module, inputs):
    with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        module(*inputs)
    return sum(1 for event in prof.events() if event.name == 'aten::_convolution')


def host_convolutions(module, inputs):
    rdna1.reset_counters()
    with torch.no_grad():
        module(*inputs)
    torch.cuda.synchronize()
    return rdna1.counters()['host_convolutions']


def worst_error(actual, expected):
    """Largest relative 2-norm difference over matching tensors (an exact zero counts as 0)."""
    assert len(actual) == len(expected), (len(actual), len(expected))
    worst = 0.0
    for got, want in zip(actual, expected):
        if want is None or want.numel() == 0:
            assert got is None or got.numel() == 0
            continue
        difference = (got.double() - want.double()).norm().item()
        worst = max(worst, difference / max(want.double().norm().item(), 1e-30))
    return worst


def rewritten_copy(module, directory, name):
    path, out = os.path.join(directory, name + '.pt'), os.path.join(directory, name + '.rdna1.pt')
    module.save(path)
    rdna1.rewrite(path, out)
    os.remove(path)
    rewritten = rdna1.load(out, map_location='cuda')
    os.remove(out)
    return rewritten


def check(name, model, inputs, directory, variants):
    """Checks one model; returns a one-line result. Raises AssertionError on a failure."""
    model = model.cuda()
    inputs = [x.cuda() for x in inputs]
    rewritten = rewritten_copy(torch.jit.script(model), directory, name)
    expected, _ = forward_backward(model, inputs)
    actual, names = forward_backward(rewritten, inputs, profile=True)
    dnn = [n for n in names if any(marker in n.lower() for marker in DNN_MARKERS)]
    assert not dnn, f'cuDNN/MIOpen ops ran: {dnn[:3]}'
    calls, hosted = convolution_calls(model, inputs), host_convolutions(rewritten, inputs)
    assert calls == hosted, f'original makes {calls} convolution calls, the runtime ran {hosted}'
    errors = {'float32': worst_error(actual, expected)}
    if 'channels_last' in variants:
        last = [x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in inputs]
        errors['channels_last'] = worst_error(forward_backward(rewritten, last)[0], expected)
    if 'zero_batch' in variants:
        empty = [x[:0] for x in inputs]
        errors['zero_batch'] = worst_error(forward_backward(rewritten, empty)[0],
                                           forward_backward(model, empty)[0])
    for dtype in (torch.float16, torch.bfloat16):
        if str(dtype).split('.')[1] in variants:
            low = forward_backward(rewritten.to(dtype), [x.to(dtype) for x in inputs])[0]
            rewritten.float()
            errors[str(dtype).split('.')[1]] = worst_error([t.float() for t in low], expected)
    for variant, error in errors.items():
        dtype = getattr(torch, variant, torch.float32)
        assert error < TOLERANCE[dtype], f'{variant}: relative error {error:.2e}'
    summary = ', '.join(f'{variant} {error:.1e}' for variant, error in errors.items())
    return f'{calls} convolutions on the host, no cuDNN/MIOpen op; relative error {summary}'


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--only', choices=['zoo', 'shapes'])
    parser.add_argument('--shard', default='0/1')
    parser.add_argument('--models', help='comma-separated names')
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(rdna1.runtime_info(), '| torch', torch.__version__, '|', torch.cuda.get_device_name(), flush=True)

    jobs = []
    if args.only != 'zoo':
        for name in shape_models.MODELS:
            if name != 'explicit_convolution_backward':  # its output is a backward: nothing to differentiate
                jobs.append((name, lambda name=name: shape_models.build(name),
                             ('channels_last', 'zero_batch', 'float16', 'bfloat16')))
    if args.only != 'shapes':
        for name in zoo_models.names():
            jobs.append((name, lambda name=name: (lambda m, x: (m, [x]))(*zoo_models.build(name)),
                         ('channels_last',)))
    if args.models:
        jobs = [job for job in jobs if job[0] in args.models.split(',')]
    shard, count = (int(n) for n in args.shard.split('/'))
    jobs = jobs[shard::count]

    failures = []
    with tempfile.TemporaryDirectory() as directory:
        for name, build, variants in jobs:
            start = time.monotonic()
            try:
                model, inputs = build()
                line = check(name, model, inputs, directory, variants)
                print(f'PASS {name}: {line} ({time.monotonic() - start:.1f}s)', flush=True)
            except Exception as error:  # report every model, then fail
                failures.append(name)
                print(f'FAIL {name}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}',
                      flush=True)
                traceback.print_exc(limit=3)
            torch.cuda.empty_cache()
    print(f'device zoo: {len(jobs) - len(failures)}/{len(jobs)} models pass'
          + (f'; failed: {", ".join(failures)}' if failures else ''))
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
