#!/usr/bin/env python3
"""Times, in one run, four ways of running each model with host convolutions:

  (a) gpu       the original model on the GPU (cuDNN): what RDNA1 users cannot run
  (b) per-layer the workaround users have today: every conv copies its input and weights to the
                host (blocking), convolves there in NCHW, copies the result back (pageable);
                a faithful re-implementation, with a host backward so it can train
  (c) cpu       the whole model on the host, channels-last
  (d) ours      the model rewritten by rdna1 (--regions=auto), on the GPU; training rows time
                every mode of --train-regions in the same alternation

Medians over repeats after warm-up, a fresh random input for every repeat. Prints a markdown
table with ms and ratios and the runtime's transfer counters per forward.

    benchmark.py [--models resnet50,...] [--batches 1,8] [--device cuda] [--out DIR]
"""
import argparse
import copy
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, 'python'))
sys.path.insert(0, os.path.join(HERE, os.pardir, 'samples'))
import rdna1  # noqa: E402
import sample_models  # noqa: E402


class AudioEncoder(nn.Module):
    """Conv front end (two conv1d, as in speech encoders) then a transformer encoder."""

    def __init__(self, mels=80, width=384, layers=4, heads=6):
        super().__init__()
        self.conv1 = nn.Conv1d(mels, width, 3, padding=1)
        self.conv2 = nn.Conv1d(width, width, 3, stride=2, padding=1)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers)

    def forward(self, x):
        x = F.gelu(self.conv2(F.gelu(self.conv1(x))))
        return self.encoder(x.transpose(1, 2))


def torchvision_model(name):
    import torchvision
    return lambda: getattr(torchvision.models, name)(weights=None)


MODELS = {
    'resnet18': (torchvision_model('resnet18'), (3, 224, 224)),
    'resnet50': (torchvision_model('resnet50'), (3, 224, 224)),
    'mobilenet_v2': (torchvision_model('mobilenet_v2'), (3, 224, 224)),
    'unet': (lambda: sample_models.SmallUNet(width=32), (3, 256, 256)),
    'convnext_tiny': (torchvision_model('convnext_tiny'), (3, 224, 224)),
    'vit_b_16': (torchvision_model('vit_b_16'), (3, 224, 224)),
    'audio_encoder': (AudioEncoder, (80, 1500)),
}


# ---- (b): the per-layer fallback -------------------------------------------------------------
class PerLayerConv(torch.autograd.Function):
    """One conv on the host: blocking copies of input and weights, NCHW, pageable copy back."""

    @staticmethod
    def forward(ctx, x, weight, bias, conv):
        xh, wh = x.cpu(), weight.cpu()
        bh = bias.cpu() if bias is not None else None
        ctx.save_for_backward(xh, wh)
        ctx.conv, ctx.has_bias, ctx.devices = conv, bias is not None, (x.device, weight.device)
        return conv._conv_forward(xh, wh, bh).to(x.device)

    @staticmethod
    def backward(ctx, grad):
        xh, wh = ctx.saved_tensors
        c = ctx.conv
        gi, gw, gb = torch.ops.aten.convolution_backward(
            grad.cpu(), xh, wh, [wh.shape[0]] if ctx.has_bias else None, c.stride,
            c.padding if not isinstance(c.padding, str) else [0] * len(c.stride), c.dilation,
            False, [0] * len(c.stride), c.groups, [True, True, ctx.has_bias])
        return (gi.to(ctx.devices[0]), gw.to(ctx.devices[1]),
                gb.to(ctx.devices[1]) if ctx.has_bias else None, None)


def per_layer(model):
    """A copy of `model` whose Conv1d/Conv2d layers run as the per-layer fallback."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            module.forward = (lambda m: lambda x: PerLayerConv.apply(x, m.weight, m.bias, m))(module)
    return model


# ---- timing ------------------------------------------------------------------------------------
def sync(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


BUDGET_S = float(os.environ.get('BENCH_BUDGET_S', 4.0))  # timing budget per measurement


def time_ms(step, make_input, device, warmup=3, budget_s=None, max_repeats=15):
    budget_s = BUDGET_S if budget_s is None else budget_s
    for _ in range(warmup):
        step(make_input())
    sync(device)
    times = []
    while len(times) < 3 or (len(times) < max_repeats and sum(times) / 1e3 < budget_s):
        x = make_input()
        sync(device)
        start = time.perf_counter()
        step(x)
        sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def time_alternating(runs, warmup=3, budget_s=None, max_repeats=15):
    """Median ms of each of runs {name: (step, make_input, device)}, timed in alternation: every
    round runs each once, so a machine that slows down for a while slows them all alike (timed one
    after another, 16 ms rows moved by 15% between calls)."""
    budget_s = BUDGET_S * len(runs) if budget_s is None else budget_s
    for step, make_input, device in runs.values():
        for _ in range(warmup):
            step(make_input())
        sync(device)
    times = {name: [] for name in runs}
    spent = 0.0
    while len(times[next(iter(runs))]) < 3 or (len(times[next(iter(runs))]) < max_repeats and spent < budget_s):
        for name, (step, make_input, device) in runs.items():
            x = make_input()
            sync(device)
            start = time.perf_counter()
            step(x)
            sync(device)
            elapsed = time.perf_counter() - start
            times[name].append(elapsed * 1e3)
            spent += elapsed
    return {name: statistics.median(t) for name, t in times.items()}


def make_inputs(shape, batch, device, channels_last=False):
    def make():
        x = torch.randn((batch,) + shape, device=device)
        return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x
    return make


def inference_step(model):
    def step(x):
        with torch.inference_mode():
            return model(x)
    return step


def training_step(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step(x):
        optimizer.zero_grad(set_to_none=True)
        model(x).float().square().mean().backward()
        optimizer.step()
    return step


def build(name, workdir, device, regions='auto'):
    factory, shape = MODELS[name]
    torch.manual_seed(0)
    eager = factory().eval()
    example = torch.randn((1,) + shape)
    try:
        scripted = torch.jit.script(eager)
        how = 'scripted'
    except Exception:  # noqa: BLE001 - any scripting failure falls back to tracing
        scripted = torch.jit.trace(eager, example)
        how = 'traced'
    original = os.path.join(workdir, f'{name}.pt')
    rewritten = os.path.join(workdir, f"{name}.{regions.replace('/', '-')}.rdna1.pt")
    scripted.save(original)
    summary = rdna1.rewrite(original, rewritten, regions)
    # Fresh loads rather than deepcopy: deep-copied script modules have non-leaf parameters.
    load_gpu = lambda: torch.jit.load(original, map_location=device).eval()  # noqa: E731
    load_ours = lambda: rdna1.load(rewritten, map_location=device).eval()  # noqa: E731
    return eager, load_gpu, load_ours, shape, how, summary


def counters_per_call(step, make_input, calls=3):
    step(make_input())  # warm the parameter cache
    rdna1.reset_counters()
    for _ in range(calls):
        step(make_input())
    sync('cuda' if torch.cuda.is_available() else 'cpu')
    c = rdna1.counters()
    return {k: v / calls for k, v in c.items()}


def bench_inference(name, batch, workdir, device, regions='auto'):
    eager, load_gpu, load_ours, shape, how, summary = build(name, workdir, device, regions)
    gpu, ours = load_gpu(), load_ours()
    fallback = per_layer(eager).to(device)
    cpu = copy.deepcopy(eager).to(memory_format=torch.channels_last)
    ms = time_alternating({
        'gpu': (inference_step(gpu), make_inputs(shape, batch, device), device),
        'per-layer': (inference_step(fallback), make_inputs(shape, batch, device), device),
        'cpu': (inference_step(cpu), make_inputs(shape, batch, 'cpu', channels_last=True), 'cpu'),
        'ours': (inference_step(ours), make_inputs(shape, batch, device), device),
    })
    counts = counters_per_call(inference_step(ours), make_inputs(shape, batch, device))
    with torch.inference_mode():
        x = make_inputs(shape, batch, device)()
        got, want = ours(x).float(), gpu(x).float()
        # torchvision zero-initialises some heads (vit_b_16): all-zero outputs give 0 here.
        error = ((got - want).norm() / want.norm().clamp_min(1e-30)).item()
    return ms, counts, how, summary, error


def bench_training(name, batch, workdir, device, modes=('auto',)):
    """Training steps of the rewrite in each of `modes`, timed in alternation with the original on
    the GPU, the per-layer fallback and the whole model on the CPU (one row per mode, sharing
    those three columns): {mode: (ms, counts, error)}, how, summary."""
    built = {mode: build(name, workdir, device, mode) for mode in modes}
    eager, load_gpu, _, shape, how, summary = built[modes[0]]
    ours = {mode: each[2] for mode, each in built.items()}
    fallback = per_layer(eager).to(device).train()
    cpu = copy.deepcopy(eager).to(memory_format=torch.channels_last).train()
    runs = {
        'gpu': (training_step(load_gpu().train()), make_inputs(shape, batch, device), device),
        'per-layer': (training_step(fallback), make_inputs(shape, batch, device), device),
        'cpu': (training_step(cpu), make_inputs(shape, batch, 'cpu', channels_last=True), 'cpu'),
    }
    for mode, load in ours.items():
        runs['ours:' + mode] = (training_step(load().train()), make_inputs(shape, batch, device), device)
    ms = time_alternating(runs)
    # Gradients of one step from the same weights and input, against the original on the GPU
    # with cuDNN's fastest algorithms off (TF32 off): relative 2-norm error of the worst tensor.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    x = make_inputs(shape, batch, device)()
    original = load_gpu().train()
    results = {}
    for mode, load in ours.items():
        counts = counters_per_call(training_step(load().train()), make_inputs(shape, batch, device))
        grads = []
        for model in (original, load().train()):
            model.zero_grad(set_to_none=True)
            model(x).float().square().mean().backward()
            grads.append([p.grad for p in model.parameters()])
        error = max(((a - b).norm() / b.norm().clamp_min(1e-30)).item() for a, b in zip(grads[1], grads[0]))
        results[mode] = (dict(ms, ours=ms['ours:' + mode]), counts, error)
    torch.backends.cudnn.allow_tf32 = True
    return results, how, summary


def table_row(name, how, mode, regions, batch, ms, c, error):
    copies = c['to_host_copies'] + c['to_device_copies']
    return (f"| {name} ({how}) | {mode}, {regions} | {batch} | {ms['gpu']:.1f} | {ms['per-layer']:.1f} | {ms['cpu']:.1f} "
            f"| {ms['ours']:.1f} | {ms['ours'] / ms['per-layer']:.2f} | {ms['ours'] / ms['cpu']:.2f} "
            f"| {ms['ours'] / ms['gpu']:.2f} | {copies:.0f} | {c['to_host_bytes'] / 1e6:.2f} "
            f"| {c['to_device_bytes'] / 1e6:.2f} | {c['param_bytes'] / 1e6:.2f} | {error:.1e} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', default=','.join(MODELS))
    parser.add_argument('--batches', default='1,8')
    parser.add_argument('--train', default='resnet18:8', help='model:batch pairs for a training step')
    parser.add_argument('--infer', default='', help='model:batch pairs for more inference rows, each '
                        'at its own batch (after --models x --batches)')
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--regions', default='auto', choices=['auto', 'per-op'],
                        help='rewrite mode for the inference rows')
    parser.add_argument('--train-regions', default='auto',
                        help='rewrite modes for the training rows, comma-separated, a row each '
                        '(auto, the default rewrite, or per-op)')
    parser.add_argument('--out', default=None, help='folder for the markdown table')
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    # This table is the host path's: backend auto would pick vendor on a CUDA GPU (not AMD),
    # and 0 bytes would cross (an earlier call of this session measured that by mistake).
    rdna1.set_backend('host')
    print(rdna1.runtime_info(), '| torch', torch.__version__, '|',
          torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU',
          '| host threads', torch.get_num_threads(),
          f"| bus {rdna1.bus_bandwidth(args.device):.1f} GB/s (pinned, slower direction)"
          if args.device != 'cpu' else '')
    rows = ['| model | mode | batch | (a) gpu ms | (b) per-layer ms | (c) cpu ms | (d) ours ms | ours/(b) | ours/(c) '
            '| ours/(a) | copies/fwd | MB to host/fwd | MB to device/fwd | param MB/fwd | rel. error |',
            '|' + ' --- |' * 15]
    jobs = [(m, 'infer', int(b), args.regions) for m in args.models.split(',') if m for b in args.batches.split(',')]
    jobs += [(m.split(':')[0], 'infer', int(m.split(':')[1]), args.regions) for m in args.infer.split(',') if m]
    train_modes = tuple(args.train_regions.split(','))
    for mode in train_modes:
        if mode not in ('auto', 'per-op'):
            parser.error(f"--train-regions: unknown mode '{mode}' (auto, per-op)")
    jobs += [(m.split(':')[0], 'train', int(m.split(':')[1]), train_modes) for m in args.train.split(',') if m]
    with tempfile.TemporaryDirectory() as workdir:
        for name, mode, batch, regions in jobs:
            if mode == 'infer':
                ms, c, how, summary, error = bench_inference(name, batch, workdir, args.device, regions)
                measured = {regions: (ms, c, error)}
            else:
                measured, how, summary = bench_training(name, batch, workdir, args.device, regions)
            for regions_mode, (ms, c, error) in measured.items():
                row = table_row(name, how, mode, regions_mode, batch, ms, c, error)
                print(row, '  #', summary, flush=True)
                rows.append(row)
    table = '\n'.join(rows)
    print('\n' + table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, 'benchmark.md'), 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
