#!/usr/bin/env python3
"""On a CUDA machine (torch 2.x): exported programs rewritten by rdna1.rewrite, with backends device
and host. Per model and backend: cuDNN/MIOpen ops under torch.profiler over forward and backward,
the whole state_dict after 3 SGD steps against the original program's (cuDNN off for both), and
the step time against the original with cuDNN off. Then an AOTInductor package of a rewritten
resnet18, built for CUDA, run from C++ (rdna1-run-aoti-package) with backend device.

    export_check.py [--models resnet18,...] [--runner build-device/bin/rdna1-run-aoti-package]

Exits 1 when any row reached cuDNN/MIOpen or the package disagrees with the original."""
import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time
import zipfile

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, 'python'))
import rdna1  # noqa: E402


def step_seconds(module, x, steps=5):
    module(x).sum().backward()
    torch.cuda.synchronize()
    start = time.time()
    for _ in range(steps):
        module(x).sum().backward()
    torch.cuda.synchronize()
    return (time.time() - start) / steps


def train_three_steps(module, x, cudnn):
    """SGD steps with the same random numbers for every module (stochastic depth, dropout)."""
    torch.backends.cudnn.enabled = cudnn
    torch.manual_seed(1)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01)
    for _ in range(3):
        optimizer.zero_grad()
        module(x).square().mean().backward()
        optimizer.step()
    torch.backends.cudnn.enabled = True
    return module.state_dict()


def distance(a, b):
    return max((a[k].double() - b[k].double()).abs().max().item() for k in b)


def check_model(name, backend, x):
    """The rewritten program against the original with cuDNN off; the noise floor is how far
    the original itself moves between cuDNN on and off."""
    rdna1.set_backend(backend)
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)().cuda().train()
    program = torch.export.export(model, (x,))
    references = [copy.deepcopy(program) for _ in range(2)]
    ours = rdna1.rewrite(program).module.module()
    off, on = (reference.module() for reference in references)
    try:
        state = train_three_steps(ours, x, cudnn=False)
        want = train_three_steps(off, x, cudnn=False)
        floor = distance(train_three_steps(on, x, cudnn=True), want)
        error = distance(state, want)
        with torch.profiler.profile() as profile:  # after the comparison: it trains a step too
            ours(x).sum().backward()
        reached = sorted({e.name for e in profile.events() if 'cudnn' in e.name or 'miopen' in e.name})
        torch.backends.cudnn.enabled = False
        ms_ours, ms_off = 1e3 * step_seconds(ours, x), 1e3 * step_seconds(off, x)
    finally:
        torch.backends.cudnn.enabled = True
        rdna1.set_backend(None)
    close = error <= max(2 * floor, 1e-4)
    print(f'{name} backend {backend}: cuDNN/MIOpen ops {reached or "none"}; state after 3 steps '
          f'{error:.1e} from the original with cuDNN off (cuDNN on vs off: {floor:.1e}) '
          f'{"ok" if close else "TOO FAR"}; step {ms_ours:.1f} ms, original with cuDNN off '
          f'{ms_off:.1f} ms ({ms_ours / ms_off:.2f}x)', flush=True)
    return not reached and close


def check_package(runner):
    torch.manual_seed(0)
    model = torchvision.models.resnet18().cuda().eval()
    x = torch.randn(8, 3, 224, 224, device='cuda')
    with tempfile.TemporaryDirectory() as work:
        package = os.path.join(work, 'resnet18_cuda.pt2')
        rdna1.aot_compile(torch.export.export(model, (x,)), package)
        torch.save([x.cpu()], os.path.join(work, 'in.pt'))
        with torch.no_grad():
            reference = model(x).cpu()
        result = subprocess.run([runner, package, os.path.join(work, 'in.pt'), os.path.join(work, 'out.pt'),
                                 '--device', 'cuda', '--backend', 'device'], capture_output=True, text=True)
        if result.returncode != 0:
            print(f'AOTInductor package: runner failed: {result.stderr.strip()[-500:]}')
            return False
        out = torch.load(os.path.join(work, 'out.pt'))
        out = out[0] if isinstance(out, (list, tuple)) else out
        difference = (out - reference).abs().max().item()
        with zipfile.ZipFile(package) as archive:  # the generated C++ that calls the kernels
            sources = [n for n in archive.namelist() if n.endswith('.cpp')]
            calls = sum(archive.read(n).decode('utf-8', 'replace').count('proxy_executor_call_function(')
                        for n in sources)
            cudnn = sum(archive.read(n).decode('utf-8', 'replace').count('cudnn') for n in sources)
        print(f'package sources: {sources}; calls into cuDNN named in them: {cudnn}')
        print(f'AOTInductor package of a rewritten resnet18 for CUDA, run from C++ with backend device: '
              f'max |difference| {difference:.1e}, {calls} proxy-executor calls', flush=True)
        return difference < 1e-3


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', default='resnet18,mobilenet_v3_small,efficientnet_b0,regnet_y_400mf')
    parser.add_argument('--runner', default='build-device/bin/rdna1-run-aoti-package')
    args = parser.parse_args()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    print(rdna1.runtime_info(), '| torch', torch.__version__, '|', torch.cuda.get_device_name())
    x = torch.randn(8, 3, 224, 224, device='cuda')
    ok = all([check_model(name, backend, x) for name in args.models.split(',') for backend in ('device', 'host')])
    ok = check_package(args.runner) and ok
    print('export check:', 'PASS' if ok else 'FAIL')
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
