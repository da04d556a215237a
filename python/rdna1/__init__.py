"""Loads models rewritten by rdna1-rewrite, whose convolutions run on the host.

    import rdna1
    model = rdna1.load("out.pt")          # or rdna1.load("out.pt", map_location="cuda")

The runtime library (librdna1_runtime.so) is found through the RDNA1_RUNTIME environment
variable, next to this package, or in the build tree (build/lib) of the source checkout.
"""
import os
import re
import zipfile

import torch

__all__ = ['load', 'rewrite', 'load_runtime', 'runtime_path', 'runtime_info', 'counters', 'reset_counters', 'clear_param_cache',
           'set_stand_in_device', 'set_backend', 'backend_for', 'probe', 'RuntimeNotFoundError']

_LIBRARY = 'librdna1_runtime.so'
_loaded_path = None


class RuntimeNotFoundError(RuntimeError):
    """The rdna1 runtime library could not be found or loaded."""


def _candidates():
    env = os.environ.get('RDNA1_RUNTIME')
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, _LIBRARY)
    yield os.path.join(here, os.pardir, os.pardir, 'build', 'lib', _LIBRARY)


def runtime_path():
    """Path of the runtime library that load_runtime() would load, or None."""
    for candidate in _candidates():
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    return None


def load_runtime():
    """Loads librdna1_runtime.so once, registering the rdna1:: operators. Returns its path."""
    global _loaded_path
    if _loaded_path:
        return _loaded_path
    path = runtime_path()
    if path is None:
        where = os.environ.get('RDNA1_RUNTIME') or ', '.join(os.path.abspath(c) for c in _candidates())
        raise RuntimeNotFoundError(
            f'rdna1 runtime library not found (looked for {where}); build it (see README.md) '
            f'or set RDNA1_RUNTIME=/path/to/{_LIBRARY}')
    try:
        torch.ops.load_library(path)
    except OSError as error:
        raise RuntimeNotFoundError(f'cannot load the rdna1 runtime {path}: {error}') from error
    _loaded_path = path
    return path


def rewrite(input_path, output_path, regions='auto', backend='auto'):
    """Rewrites a saved TorchScript model as the rdna1-rewrite tool does (no LLVM needed).
    `backend` is the default baked into the output (see set_backend).

    Uses librdna1_rewriter.so from the runtime's folder. Returns the one-line summary;
    raises RuntimeError with the tool's message on bad input.
    """
    runtime = load_runtime()
    rewriter = os.path.join(os.path.dirname(runtime), 'librdna1_rewriter.so')
    if not os.path.isfile(rewriter):
        raise RuntimeNotFoundError(f'rdna1 rewriter library not found next to the runtime: {rewriter}')
    if not hasattr(torch.ops.rdna1_tools, 'rewrite_file'):
        torch.ops.load_library(rewriter)
    return torch.ops.rdna1_tools.rewrite_file(os.fspath(input_path), os.fspath(output_path), regions, backend)


def counters():
    """The runtime's counters: transfers and bytes each way, parameter cache hits and copies,
    host convolutions and their time (ns)."""
    load_runtime()
    return dict(torch.ops.rdna1.counters())


def reset_counters():
    load_runtime()
    torch.ops.rdna1.reset_counters()


def clear_param_cache():
    """Forgets the runtime's host copies of parameters. Needed only after writes through
    `param.data`, which the cache cannot see; in-place updates and optimizer steps it sees."""
    load_runtime()
    torch.ops.rdna1.clear_param_cache()


def set_stand_in_device(on=True):
    """Turns the stand-in device on or off (for tests on machines without a GPU): while on, host
    tensors cross region boundaries, host-parameter lookups and copy-backs as copies into separate
    storage, as device tensors would, and the counters count them. Setting RDNA1_STAND_IN_DEVICE=1
    in the environment before the runtime loads does the same."""
    load_runtime()
    torch.ops.rdna1.set_stand_in_device(bool(on))


def set_backend(backend):
    """Where convolutions run, for this process: 'host' (copied to the CPU), 'device' (the GPU's
    own kernels, never cuDNN/MIOpen), 'vendor' (the original call), 'auto' (per device: the CPU ->
    host; AMD GPUs -> device if the probe passes, else host; other GPUs -> vendor), or None to
    clear. Overrides RDNA1_BACKEND and the default a model baked in."""
    load_runtime()
    torch.ops.rdna1.set_backend(backend)


def backend_for(device):
    """The backend convolutions on `device` use now ('host', 'device' or 'vendor')."""
    load_runtime()
    return torch.ops.rdna1.backend_for(torch.device(device))


def probe(refresh=False):
    """The device probe's verdict for each GPU, one line each (runs the crash-safe probe in a
    child process unless a cached verdict exists, or `refresh`)."""
    load_runtime()
    return torch.ops.rdna1.probe(refresh)


def runtime_info():
    """One line naming the runtime version and the HIP devices it sees."""
    load_runtime()
    return torch.ops.rdna1.runtime_info()


def _rdna1_ops_in(path):
    """The rdna1:: operators a saved model calls, read from its code records."""
    ops = set()
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith('.py') and '/code/' in name:
                    ops.update(re.findall(r'ops\.rdna1\.(\w+)', archive.read(name).decode('utf-8', 'replace')))
    except (OSError, zipfile.BadZipFile):
        pass
    return sorted('rdna1::' + op for op in ops)


def load(path, map_location=None):
    """torch.jit.load for a rewritten model, with the rdna1 runtime loaded first."""
    try:
        load_runtime()
    except RuntimeNotFoundError as error:
        needed = _rdna1_ops_in(path)
        if needed:
            raise RuntimeNotFoundError(f'{path} calls {", ".join(needed)}, which the rdna1 runtime '
                                       f'provides: {error}') from None
        # A model that was not rewritten needs no runtime.
    return torch.jit.load(path, map_location=map_location)
