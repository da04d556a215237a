"""What a user checks after `pip install`: the installed rdna1 (not a checkout's) rewrites a
scripted torchvision resnet18; plain torch.jit.load runs the result, whose outputs and every
gradient (input and parameters) match the original's; `python -m rdna1` rewrites from the
command line.

    check_pip_install.py VENV [--device cuda] [--backends host,device]

On a GPU each backend named runs the rewritten model and must reach no cuDNN/MIOpen op (under
torch.profiler); the reference is the original on the same GPU, TF32 off."""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
import torchvision

import rdna1

parser = argparse.ArgumentParser()
parser.add_argument('venv')
parser.add_argument('--device', default='cpu')
parser.add_argument('--backends', default='', help='comma-separated; default: the runtime default')
args = parser.parse_args()

venv = os.path.realpath(args.venv)
for name, path in (('package', rdna1.__file__), ('runtime', rdna1.runtime_path())):
    assert os.path.realpath(path).startswith(venv), f'{name} {path} is not the one installed in {venv}'
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
# float32 noise on a GPU grows with the number of terms summed; 1e-4 holds on the CPU.
tolerance = 1e-4 if args.device == 'cpu' else 2e-3


def outputs_and_grads(module):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)).to(args.device).requires_grad_()
    y = module(x)
    (y * torch.randn(y.shape, generator=torch.Generator().manual_seed(2)).to(args.device)).sum().backward()
    grads = [x.grad] + [p.grad for p in module.parameters()]
    for p in module.parameters():
        p.grad = None
    return [t.detach().cpu().double() for t in [y] + grads]


def dnn_library_ops(module):
    with torch.profiler.profile() as profile:
        outputs_and_grads(module)
    return sorted({e.name for e in profile.events() if 'cudnn' in e.name or 'miopen' in e.name})


torch.manual_seed(0)
original = torch.jit.script(torchvision.models.resnet18(num_classes=10).eval())
with tempfile.TemporaryDirectory() as directory:
    source, out = os.path.join(directory, 'resnet18.pt'), os.path.join(directory, 'resnet18.rdna1.pt')
    torch.jit.save(original, source)
    result = rdna1.rewrite(source, out)
    assert result.summary.startswith('rewrote 20 convolution layers'), result.summary
    rewritten = torch.jit.load(out).to(args.device)
    assert 'rdna1::conv' in rdna1._rdna1_ops_in(out), 'the rewritten model calls no rdna1::conv'
    expected = outputs_and_grads(original.to(args.device))
    for backend in args.backends.split(',') if args.backends else [None]:
        rdna1.set_backend(backend)
        actual = outputs_and_grads(rewritten)
        assert len(actual) == len(expected) == 64, (len(actual), len(expected))
        worst = max((a - b).abs().max().item() / max(1.0, a.abs().max().item()) for a, b in zip(expected, actual))
        assert worst < tolerance, f'backend {backend}: rewritten model differs from the original by {worst:.2e}'
        reached = dnn_library_ops(rewritten) if args.device != 'cpu' else []
        assert not reached, f'backend {backend} reached {reached}'
        print(f'backend {backend or "default"} on {args.device}: outputs and 63 gradients within {worst:.1e} '
              f'of the original' + (', no cuDNN/MIOpen op' if args.device != 'cpu' else ''))

    # Every warning shown: the tool's own output carries none (torch 2.x deprecates TorchScript's
    # script and trace, which the rewrite does not call).
    cli = subprocess.run([sys.executable, '-W', 'default', '-m', 'rdna1', source, os.path.join(directory, 'cli.pt')],
                         capture_output=True, text=True)
    assert cli.returncode == 0 and cli.stdout.startswith('rewrote 20 convolution layers'), cli
    assert cli.stderr == '', f'python -m rdna1 printed: {cli.stderr}'
print(f'pip-installed rdna1 {rdna1.__version__} for torch {torch.__version__}: checked')
