"""Rewrites TorchScript models so their convolutions never reach cuDNN/MIOpen, and runs them.

    import rdna1                           # registers the rdna1:: operators
    model = torch.jit.load("out.pt")       # or rdna1.load("out.pt", map_location="cuda")
    rdna1.rewrite("in.pt", "out.pt")       # as the rdna1-rewrite tool; also modules in memory

The runtime library (librdna1_runtime.so) is found through the RDNA1_RUNTIME environment
variable, next to this package (pip install), or in the build tree (build/lib) of the source
checkout. python3 -m rdna1 IN OUT [options] is the command line.
"""
import collections
import glob
import json
import os
import re
import tempfile
import zipfile

import torch

__version__ = '0.3.0'  # the project's version (CMakeLists.txt); e2e_python_load checks they agree

__all__ = ['load', 'rewrite', 'RewriteResult', 'load_runtime', 'runtime_path', 'runtime_info', 'counters', 'reset_counters', 'clear_param_cache',
           'set_stand_in_device', 'set_backend', 'backend_for', 'bus_bandwidth', 'probe', 'aot_compile', 'RuntimeNotFoundError', 'TorchMismatchError', 'RewriteError']

_LIBRARY = 'librdna1_runtime.so'
_loaded_path = None


class RuntimeNotFoundError(RuntimeError):
    """The rdna1 runtime library could not be found or loaded."""


class TorchMismatchError(ImportError):
    """The rdna1 runtime library was built for another torch than the one imported."""


def _check_built_for_this_torch(library):
    """Raises TorchMismatchError, naming both versions, when the torch that `library` was built
    for (rdna1_torch_version.txt beside it) is not the one imported: loading it would fail on
    an undefined symbol, or crash."""
    record = os.path.join(os.path.dirname(library), 'rdna1_torch_version.txt')
    try:
        with open(record) as f:
            built_for = f.read().strip()
    except OSError:
        return  # a library from before the record existed, or copied by hand: nothing to compare
    if built_for and built_for != torch.__version__:
        raise TorchMismatchError(
            f'rdna1 {__version__} at {os.path.dirname(library)} was built for torch {built_for}, but this Python '
            f'imports torch {torch.__version__}; rebuild it for this torch: '
            f'pip install --no-build-isolation --force-reinstall ./python (docs/install.md)')


def _beside(directory, stem):
    """`stem` in `directory`: the unversioned name, else its versioned file (an installed package
    holds only librdna1_runtime.so.X.Y, the name the rewriter library asks for)."""
    plain = os.path.join(directory, stem)
    if os.path.isfile(plain):
        return plain
    versioned = sorted(glob.glob(plain + '.*'))
    return versioned[-1] if versioned else plain


def _candidates():
    env = os.environ.get('RDNA1_RUNTIME')
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    yield _beside(here, _LIBRARY)
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
    _check_built_for_this_torch(path)
    try:
        torch.ops.load_library(path)
    except OSError as error:
        raise RuntimeNotFoundError(f'cannot load the rdna1 runtime {path}: {error}') from error
    _loaded_path = path
    return path


RewriteResult = collections.namedtuple('RewriteResult', 'summary report warnings module')
RewriteResult.__doc__ = """What rdna1.rewrite did: the one-line summary (also str() of the result),
the report as a dict (docs/report.md), one warning per node that still reaches cuDNN/MIOpen, and
the rewritten module when the input was a module in memory (else None)."""
RewriteResult.__str__ = lambda self: self.summary


class RewriteError(RuntimeError):
    """The rewrite refused its input or could not write its output: `str()` is the tool's one-line
    message, `exit_code` the rdna1-rewrite tool's exit code for it (docs/cli.md)."""

    def __init__(self, exit_code, message):
        super().__init__(message)
        self.exit_code = exit_code


_EXIT_CODE = re.compile(r'\[rdna1 exit (\d+)\] ')


def _rewrite_file(*args):
    """rdna1_tools::rewrite_file, its errors as RewriteError."""
    try:
        return _rewriter()(*args)
    except RuntimeError as error:
        text = str(error).strip()
        match = _EXIT_CODE.search(text)
        if match is None:
            raise
        raise RewriteError(int(match.group(1)), text[match.end():].splitlines()[0]) from None


def _rewriter():
    return _tools().rewrite_file


def _tools():
    """The rewriter library's ops (torch.ops.rdna1_tools), loaded once."""
    runtime = load_runtime()
    path = _beside(os.path.dirname(runtime), 'librdna1_rewriter.so')
    if not os.path.isfile(path):
        raise RuntimeNotFoundError(f'rdna1 rewriter library not found next to the runtime: {path}')
    if not hasattr(torch.ops.rdna1_tools, 'rewrite_file'):
        torch.ops.load_library(path)
    return torch.ops.rdna1_tools


def rewrite(source, output=None, regions='auto', backend='auto', dry_run=False, strict=False):
    """Rewrites a TorchScript model as the rdna1-rewrite tool does (no LLVM needed).

    `source` is a path or a torch.jit.ScriptModule. With a path, the result is written to
    `output` (atomically; nothing with `dry_run`). With a module, `output` may be omitted and the
    rewritten module is returned in the result (`.module`). `regions`: 'auto' (host regions, and
    a copy of forward for eval mode where that saves crossings) or 'per-op' (each convolution
    moves its own operands); `backend`: the default baked in ('auto', 'host', 'device',
    'vendor'; docs/backends.md); `strict`: refuse nodes that would still reach cuDNN/MIOpen
    instead of warning. Raises RewriteError (a
    RuntimeError) with the tool's one-line message and exit code on bad input. Returns a
    RewriteResult.
    """
    if _export.is_program(source):  # an ExportedProgram, or a .pt2 file by its content
        return _export.rewrite(source, output, backend, dry_run, strict)
    rewrite_file = _rewrite_file
    if isinstance(source, torch.jit.ScriptModule):
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, 'in.pt')
            out = os.fspath(output) if output is not None else os.path.join(directory, 'out.pt')
            torch.jit.save(source, path)
            summary, report, warnings = rewrite_file(path, out, regions, backend, dry_run, strict)
            module = None if dry_run else torch.jit.load(out)
            return RewriteResult(summary, json.loads(report), list(warnings), module)
    if output is None and not dry_run:
        raise ValueError('rdna1.rewrite: give an output path (or dry_run=True) for a model file')
    summary, report, warnings = rewrite_file(os.fspath(source), os.fspath(output or ''), regions,
                                             backend, dry_run, strict)
    return RewriteResult(summary, json.loads(report), list(warnings), None)


def counters():
    """The runtime's counters: transfers and bytes each way, parameter cache hits and copies,
    host convolutions and their time (ns)."""
    load_runtime()
    return dict(torch.ops.rdna1.counters())


def reset_counters():
    load_runtime()
    torch.ops.rdna1.reset_counters()


def clear_param_cache():
    """Forgets the runtime's host copies of parameters and the scale and shift kept for inference
    batch norms. Needed only after writes through `param.data`, which neither can see; in-place
    updates, optimizer steps and training-mode batch norms they see."""
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


def bus_bandwidth(device):
    """The bus's pinned bandwidth to and from `device` in GB/s, the slower direction, measured
    once per process (0 for the CPU)."""
    load_runtime()
    return torch.ops.rdna1.bus_bandwidth(torch.device(device))


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


def load(f, map_location=None, _extra_files=None):
    """torch.jit.load (same arguments) for a rewritten model, with the rdna1 runtime loaded first;
    if the runtime is missing, the error names the rdna1:: operators the model needs."""
    try:
        load_runtime()
    except RuntimeNotFoundError as error:
        needed = _rdna1_ops_in(f) if isinstance(f, (str, os.PathLike)) else []
        if needed:
            raise RuntimeNotFoundError(f'{f} calls {", ".join(needed)}, which the rdna1 runtime '
                                       f'provides: {error}') from None
        # A model that was not rewritten needs no runtime.
    return torch.jit.load(f, map_location=map_location, _extra_files=_extra_files)


# Importing the package registers the operators, as `import torchvision` does for its own: a
# rewritten model then loads with plain torch.jit.load. Without a runtime the import still works
# (rdna1.load and rdna1.rewrite then say what is missing).
try:
    load_runtime()
except RuntimeNotFoundError:
    pass

# The torch.export front door (torch 2.x): rdna1.rewrite takes ExportedPrograms and .pt2 files,
# and the runtime's ops get the fake kernels that export, torch.export.load and Inductor need.
from . import export as _export  # noqa: E402
from .aot import aot_compile  # noqa: E402
if _loaded_path and _export.available():
    _export.register_fake_kernels()

# Eager mode (docs/eager.md): rdna1.enable(), rdna1.disable(), `with rdna1.enabled(): ...`.
from .eager import enable, disable, enabled  # noqa: E402
__all__ += ['enable', 'disable', 'enabled']
