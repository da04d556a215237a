"""Eager mode: an ordinary PyTorch program keeps its convolutions, norms and RNNs away from
cuDNN/MIOpen while it is on, with no rewrite and no TorchScript.

    import rdna1
    rdna1.enable()                # or: with rdna1.enabled(): ...
    loss = model(x).sum(); loss.backward()

enable() registers the runtime's kernels (runtime/include/rdna1/Eager.h) for aten::convolution,
aten::_convolution, aten::batch_norm (which instance norm calls) and aten::lstm/gru/rnn_tanh/
rnn_relu on GPU tensors; disable() gives the dispatcher back the kernels it had. docs/eager.md
says what is covered.
"""
import contextlib
import threading

import torch

from . import load_runtime

__all__ = ['enable', 'disable', 'enabled', 'is_enabled']

# enabled() nests: the outermost block's exit disables, and only if it enabled.
_nesting = threading.local()


def enable(backend=None, _on_cpu=False):
    """Routes every convolution, batch/instance norm and RNN of GPU tensors through the rdna1
    runtime until disable(). Idempotent. `backend` ('host', 'device', 'vendor', 'auto') also sets
    rdna1.set_backend() until disable(); None keeps the runtime's choice (device where the probe
    passes on an AMD GPU, else host; vendor on other GPUs). `_on_cpu` (tests only) registers the
    same kernels for CPU tensors instead."""
    load_runtime()
    torch.ops.rdna1.eager_enable(backend, bool(_on_cpu))


def disable():
    """Removes what enable() registered (and the backend it set); a no-op when not enabled."""
    load_runtime()
    torch.ops.rdna1.eager_disable()


def is_enabled():
    load_runtime()
    return bool(torch.ops.rdna1.eager_enabled())


@contextlib.contextmanager
def enabled(backend=None, _on_cpu=False):
    """`with rdna1.enabled(): ...` runs the block with enable() on; leaves it as it found it."""
    was_on = is_enabled()
    enable(backend, _on_cpu)
    try:
        yield
    finally:
        if not was_on:
            disable()
