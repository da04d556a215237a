"""What a user checks after `pip install`: the installed rdna1 (not a checkout's) rewrites a
scripted torchvision resnet18; plain torch.jit.load runs the result, whose outputs and every
gradient (input and parameters) match the original's; `python -m rdna1` rewrites from the
command line. Usage: check_pip_install.py VENV"""
import os
import subprocess
import sys
import tempfile

import torch
import torchvision

import rdna1

venv = os.path.realpath(sys.argv[1])
for name, path in (('package', rdna1.__file__), ('runtime', rdna1.runtime_path())):
    assert os.path.realpath(path).startswith(venv), f'{name} {path} is not the one installed in {venv}'

torch.manual_seed(0)
original = torch.jit.script(torchvision.models.resnet18(num_classes=10).eval())
with tempfile.TemporaryDirectory() as directory:
    source, out = os.path.join(directory, 'resnet18.pt'), os.path.join(directory, 'resnet18.rdna1.pt')
    torch.jit.save(original, source)
    result = rdna1.rewrite(source, out)
    assert result.summary.startswith('rewrote 20 convolution layers'), result.summary
    rewritten = torch.jit.load(out)
    assert 'rdna1::conv' in rdna1._rdna1_ops_in(out), 'the rewritten model calls no rdna1::conv'

    def outputs_and_grads(module):
        x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1), requires_grad=True)
        y = module(x)
        (y * torch.randn(y.shape, generator=torch.Generator().manual_seed(2))).sum().backward()
        grads = [x.grad] + [p.grad for p in module.parameters()]
        for p in module.parameters():
            p.grad = None
        return y.detach(), grads

    y0, g0 = outputs_and_grads(original)
    y1, g1 = outputs_and_grads(rewritten)
    assert len(g0) == len(g1) == 63, (len(g0), len(g1))
    worst = max((a - b).abs().max().item() / max(1.0, a.abs().max().item()) for a, b in zip([y0] + g0, [y1] + g1))
    assert worst < 1e-4, f'rewritten model differs from the original by {worst:.2e}'

    cli = subprocess.run([sys.executable, '-m', 'rdna1', source, os.path.join(directory, 'cli.pt')],
                         capture_output=True, text=True)
    assert cli.returncode == 0 and cli.stdout.startswith('rewrote 20 convolution layers'), cli
print(f'pip-installed rdna1 {rdna1.__version__} for torch {torch.__version__}: resnet18 rewritten, '
      f'outputs and {len(g0)} gradients within {worst:.1e} of the original')
