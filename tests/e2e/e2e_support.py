"""Paths and helpers shared by the end-to-end tests (run by ctest, which sets the environment)."""
import hashlib
import os
import subprocess
import sys

import torch

BUILD_DIR = os.environ.get('RDNA1_BUILD_DIR', os.path.join(os.path.dirname(__file__), '..', '..', 'build'))
SAMPLES_DIR = os.environ.get('RDNA1_SAMPLES_DIR', os.path.join(BUILD_DIR, 'test-samples'))
TOOL = os.path.join(BUILD_DIR, 'bin', 'rdna1-rewrite')
RUN_MODEL = os.path.join(BUILD_DIR, 'bin', 'rdna1-run-model')
SOURCE_DIR = os.environ.get('RDNA1_SOURCE_DIR', os.path.join(os.path.dirname(__file__), '..', '..'))
PYTHON = sys.executable  # the Python ctest runs the tests with: RDNA1_PYTHON, whose torch was built against


def run(*args, env=None):
    """Runs a command, capturing text output."""
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, timeout=600)


def rewrite(*args):
    return run(TOOL, *args)


def sample(name, mode):
    return os.path.join(SAMPLES_DIR, f'{name}_{mode}.pt')


def digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def inlined_kinds(module, method='forward'):
    """Node kinds of a method's graph with every call inlined, nested blocks included."""
    graph = getattr(module, method).graph.copy()
    torch._C._jit_pass_inline(graph)
    kinds = []

    def walk(block):
        for node in block.nodes():
            kinds.append(node.kind())
            for inner in node.blocks():
                walk(inner)
    walk(graph)
    return kinds


def aten_convolutions(kinds):
    return [k for k in kinds if k.startswith('aten::') and ('conv' in k and k != 'aten::conv_tbc')]


def outputs_and_grads(module, x):
    """Output, input gradient and parameter gradients of a random-weighted sum of the output."""
    x = x.clone().requires_grad_(True)
    for p in module.parameters():
        p.grad = None
    y = module(x)
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
    (y * weights).sum().backward()
    return y.detach(), x.grad, [p.grad for p in module.parameters()]


def output_tensors(value):
    """The tensors of a model's output (tensor, tuple, list or dict, nested; None skipped), in order."""
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for key in sorted(value) for t in output_tensors(value[key])]
    return [t for item in value for t in output_tensors(item)]
