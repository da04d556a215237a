#!/usr/bin/env python3
"""On a CUDA (or ROCm) machine: the zoo and the model shapes of the CPU tests, with device inputs.

For every torchvision zoo model (tests/e2e/zoo_models.py, scripted) and every model shape
(tests/e2e/shape_models.py): rewrite with rdna1.rewrite, move to the GPU, run forward + backward
on device inputs and check that no cuDNN/MIOpen op runs (torch.profiler), that the runtime runs as
many host convolutions as the original's aten::_convolution calls, and that outputs and every
gradient are as close to float64 as the original's on the GPU (cuDNN, TF32 off), in the relative
2-norm. The shapes also run channels-last, zero-size batches, float16 and bfloat16.

    device_zoo.py [--only zoo|shapes] [--shard K/N] [--models a,b] [--device cpu]
"""
import argparse
import contextlib
import copy
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
from e2e_support import output_tensors  # noqa: E402
import shape_models  # noqa: E402
import zoo_models  # noqa: E402

DNN_MARKERS = ('cudnn', 'miopen')
EXPLAIN = False  # --explain: print each tensor of ours that is off by more than 1e-4


def forward_backward(module, inputs, profile=False):
    """Outputs and the gradients of inputs and parameters (None where unused), and (with
    `profile`) the names of the ops run. The loss weights are the same on every device and dtype."""
    inputs = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) if profile else contextlib.nullcontext() as prof:
        outputs = output_tensors(module(*inputs))
        generator = torch.Generator().manual_seed(1)
        weighted = [(y.double() * torch.randn(y.shape, generator=generator, dtype=torch.float64).to(y.device)).sum()
                    for y in outputs if y.requires_grad]
        wrt = [x for x in inputs if x.requires_grad] + [p for p in module.parameters() if p.requires_grad]
        grads = torch.autograd.grad(sum(weighted), wrt, allow_unused=True) if weighted else []
        synchronize()
    names = sorted({event.name for event in prof.events()}) if profile else []
    return [y.detach() for y in outputs] + list(grads), names


def synchronize():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def convolution_calls(module, inputs):
    with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        module(*inputs)
    return sum(1 for event in prof.events() if event.name == 'aten::_convolution')


def host_convolutions(module, inputs):
    rdna1.reset_counters()
    with torch.no_grad():
        module(*inputs)
    synchronize()
    return rdna1.counters()['host_convolutions']


def error(actual, reference, explain=False):
    """Largest relative 2-norm difference over the tensors (None and empty ones must match)."""
    assert len(actual) == len(reference), (len(actual), len(reference))
    worst = 0.0
    for index, (got, want) in enumerate(zip(actual, reference)):
        if want is None or want.numel() == 0:
            assert got is None or got.numel() == 0, 'a gradient is missing or extra'
            continue
        assert got is not None and got.shape == want.shape, 'a gradient is missing or has another shape'
        difference = (got.double().cpu() - want.double().cpu()).norm().item()
        relative = difference / max(want.double().norm().item(), 1e-30)
        if explain and relative > 1e-4:
            print(f'    tensor {index} {tuple(want.shape)}: relative error {relative:.2e}, '
                  f'norm {want.double().norm().item():.3e}, max |difference| '
                  f'{(got.double().cpu() - want.double().cpu()).abs().max().item():.3e}')
        worst = max(worst, relative)
    return worst


def channels_last(x):
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def rewritten_copy(module, directory, name, device):
    path, out = os.path.join(directory, name + '.pt'), os.path.join(directory, name + '.rdna1.pt')
    module.save(path)
    rdna1.rewrite(path, out)
    os.remove(path)
    rewritten = rdna1.load(out, map_location=device)
    os.remove(out)
    return rewritten


def check(name, model, inputs, directory, variants, device):
    """Checks one model; returns a one-line result. Raises AssertionError on a failure.

    Accuracy is judged as in device_check.py: each run is compared with the model in float64 on the
    host, and the rewritten model may be at most twice as far from it as the original in the same
    dtype on the device (cuDNN) or, for float32, on the host, plus a floor for dtype rounding."""
    reference = forward_backward(copy.deepcopy(model).double(), [x.double() for x in inputs])[0]
    on_host = {'float32': forward_backward(model, inputs)[0]}
    if 'channels_last' in variants:
        on_host['channels_last'] = forward_backward(model, [channels_last(x) for x in inputs])[0]
    model = model.to(device)
    inputs = [x.to(device) for x in inputs]
    rewritten = rewritten_copy(torch.jit.script(model), directory, name, device)
    actual, names = forward_backward(rewritten, inputs, profile=True)
    dnn = [n for n in names if any(marker in n.lower() for marker in DNN_MARKERS)]
    assert not dnn, f'cuDNN/MIOpen ops ran: {dnn[:3]}'
    calls, hosted = convolution_calls(model, inputs), host_convolutions(rewritten, inputs)
    assert calls == hosted, f'original makes {calls} convolution calls, the runtime ran {hosted}'
    results = {}

    def judge(variant, ours, original, floor):
        # As accurate as ATen's own convolutions on the device or on the host, whichever is worse:
        # gradients that nearly cancel amplify summation-order noise differently in each backend.
        # The host convolutions see channels-last copies (BatchedTransfer), so ATen's host result
        # for channels-last inputs counts too: for some grouped convolutions (regnet_x_16gf) its
        # weight gradients are 1e-3 off float64 where contiguous inputs give 1e-6.
        ours_error, original_error = error(ours, reference, EXPLAIN), error(original, reference)
        host_error = max(error(on_host[v], reference) for v in on_host) if variant in on_host else 0.0
        results[variant] = (ours_error, original_error, host_error)
        assert ours_error <= max(floor, 2 * original_error, 2 * host_error), \
            f'{variant}: relative error {ours_error:.2e}, original {original_error:.2e} (host {host_error:.2e})'

    judge('float32', actual, forward_backward(model, inputs)[0], 1e-5)
    if 'channels_last' in variants:
        last = [channels_last(x) for x in inputs]
        judge('channels_last', forward_backward(rewritten, last)[0], forward_backward(model, last)[0], 1e-5)
    if 'zero_batch' in variants:
        empty = [x[:0] for x in inputs]
        ours, original = forward_backward(rewritten, empty)[0], forward_backward(model, empty)[0]
        assert error(ours, original) == 0.0, 'zero-size batch'
    for dtype, floor in ((torch.float16, 1e-2), (torch.bfloat16, 5e-2)):
        variant = str(dtype).split('.')[1]
        if variant in variants and device != 'cpu':
            low = [x.to(dtype) for x in inputs]
            ours = forward_backward(rewritten.to(dtype), low)[0]
            original = forward_backward(model.to(dtype), low)[0]
            rewritten.float(), model.float()
            judge(variant, ours, original, floor)
    summary = ', '.join(f'{variant} {ours:.1e} (original {original:.1e}' + (f', on host {host:.1e})' if host else ')')
                        for variant, (ours, original, host) in results.items())
    return f'{calls} convolutions on the host, no cuDNN/MIOpen op; relative error vs float64: {summary}'


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--only', choices=['zoo', 'shapes'])
    parser.add_argument('--shard', default='0/1')
    parser.add_argument('--models', help='comma-separated names')
    parser.add_argument('--device', default='cuda', help="'cpu' to try this script where no GPU is")
    parser.add_argument('--explain', action='store_true', help='print the tensors that are off')
    args = parser.parse_args()
    global EXPLAIN
    EXPLAIN = args.explain
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    gpu = torch.cuda.get_device_name() if args.device != 'cpu' else 'no GPU'
    print(rdna1.runtime_info(), '| torch', torch.__version__, '|', gpu, flush=True)

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
                line = check(name, model, inputs, directory, variants, args.device)
                print(f'PASS {name}: {line} ({time.monotonic() - start:.1f}s)', flush=True)
            except Exception as error:  # report every model, then fail
                failures.append(name)
                print(f'FAIL {name}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}',
                      flush=True)
                traceback.print_exc(limit=3)
            if args.device != 'cpu':
                torch.cuda.empty_cache()
    print(f'device zoo: {len(jobs) - len(failures)}/{len(jobs)} models pass'
          + (f'; failed: {", ".join(failures)}' if failures else ''))
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
