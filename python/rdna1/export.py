"""Rewrites torch.export programs (ExportedProgram, .pt2) so that no convolution or norm reaches
cuDNN/MIOpen: the export front door to the runtime that the TorchScript passes also call.

The pass works on the program as torch.export.export gives it (the training IR), not after
run_decompositions(): a decomposed program's .module() cannot train (its functionalized
batch-norm statistics are written back over tensors that autograd saved), and training is what
users of these GPUs do. In the training IR convolutions appear as aten.conv1d/2d/3d,
conv_transpose1d/2d/3d, convolution or _convolution (and, in programs traced on a GPU, a
cudnn_/miopen_ spelling); batch and instance norms as aten.batch_norm / instance_norm, which
pick cuDNN/MIOpen on a GPU. Each becomes the runtime op of the same meaning (OpSchemas.h); a
decomposed program (aten.convolution, native norms that never reach cuDNN) is rewritten too.
"""
import copy
import json
import os
import shutil
import tempfile
import zipfile

import torch

# Ops that still reach cuDNN/MIOpen come from the passes' own list (rdna1_tools::remaining_dnn_users,
# passes/FindDnnLibraryCalls.cpp). Ops that ATen runs without cuDNN/MIOpen whatever the device
# (native_batch_norm, _native_batch_norm_legit*, native_group_norm, conv_tbc) are left alone.
_NORMS_REACHING_DNN = ('aten::batch_norm', 'aten::instance_norm')
# Spellings this pass does not rewrite (their outputs differ from the runtime ops'); a program
# holding one is refused, as the TorchScript rewrite refuses an unsupported node.
_UNSUPPORTED_PREFIXES = ('aten::cudnn_', 'aten::miopen_', 'aten::_batch_norm_impl_index',
                         'aten::_batch_norm_with_update', 'aten::_convolution_double_backward',
                         'aten::cudnn_convolution_relu', 'aten::cudnn_convolution_add_relu')

EXIT_BAD_INPUT, EXIT_CANNOT_REWRITE, EXIT_CANNOT_WRITE = 2, 3, 4


def available():
    """Whether this torch has torch.export (2.x)."""
    return hasattr(torch, 'export') and hasattr(torch.export, 'ExportedProgram')


def _error(code, message):
    import rdna1
    return rdna1.RewriteError(code, message)


def _unavailable_message(what):
    return (f'{what} is a torch.export program (.pt2); torch.export needs torch 2.x, and this '
            f'Python imports torch {torch.__version__}: rewrite it with rdna1 built for torch 2.x '
            f'(docs/install.md)')


# ---------------------------------------------------------------------------------------------
# Fake kernels: what tracing, torch.export.load and Inductor need to know about a call of the
# runtime's ops without running it. Only rdna1::conv needs one: conv.padding, conv_backward,
# batch_norm and instance_norm are CompositeImplicitAutograd in the runtime, so tracing sees the
# ATen (and rdna1::conv) calls they make.

def register_fake_kernels():
    """Registers rdna1::conv's fake kernel once (torch 2.x; the runtime must be loaded)."""
    register = getattr(torch.library, 'register_fake', None) or getattr(torch.library, 'impl_abstract', None)
    if register is None or getattr(register_fake_kernels, 'done', False):
        return
    register('rdna1::conv')(_conv_fake)
    register_fake_kernels.done = True


def _conv_fake(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    # ATen's own shape and layout rules: the runtime returns its convolution in the layout the
    # device's convolution would have given it (runtime/ConvolutionKernels.cpp).
    return torch.ops.aten.convolution.default(input, weight, bias, stride, padding, dilation, transposed,
                                              output_padding, groups)


# ---------------------------------------------------------------------------------------------
# The rewrite of one graph.

def _op_name(target):
    """'aten::conv2d.padding' for an OpOverload ('.default' left out), else ''."""
    schema = getattr(target, '_schema', None)
    if schema is None:
        return ''
    return schema.name + (f'.{schema.overload_name}' if schema.overload_name else '')


def _expand(value, spatial):
    value = list(value) if isinstance(value, (list, tuple)) else [value]
    return value * spatial if len(value) == 1 and spatial > 1 else value


def _spatial_dims(node):
    weight = node.args[1] if len(node.args) > 1 else node.kwargs.get('weight')
    value = weight.meta.get('val') if isinstance(weight, torch.fx.Node) else None
    if value is None:
        raise _error(EXIT_CANNOT_REWRITE, f'{node.format_node()}: the weight has no shape recorded')
    return value.dim() - 2


def _conv_call(a, spatial, transposed, output_padding=None, bias_key='bias'):
    """rdna1::conv's arguments from normalized ATen arguments `a`."""
    output_padding = a.get('output_padding', 0) if output_padding is None else output_padding
    return (torch.ops.rdna1.conv.default,
            (a['input'] if 'input' in a else a['self'], a['weight'], a.get(bias_key),
             _expand(a.get('stride', 1), spatial), _expand(a.get('padding', 0), spatial),
             _expand(a.get('dilation', 1), spatial), transposed, _expand(output_padding, spatial),
             a.get('groups', 1)))


def _string_padding_call(a, spatial):
    """'valid', and 'same' where it is symmetric, become numbers (rdna1::conv); an asymmetric
    'same' stays a string for rdna1::conv.padding, which pads at run time as ATen does."""
    dilation = _expand(a['dilation'], spatial)
    weight = a['weight'].meta['val']
    if a['padding'] == 'valid':
        return _conv_call(dict(a, padding=0), spatial, False)
    totals = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:])]
    if a['padding'] == 'same' and all(isinstance(t, int) and t % 2 == 0 for t in totals) \
            and all(s == 1 for s in _expand(a['stride'], spatial)):
        return _conv_call(dict(a, padding=[t // 2 for t in totals]), spatial, False)
    return (torch.ops.rdna1.conv.padding,
            (a['input'], a['weight'], a.get('bias'), _expand(a['stride'], spatial), a['padding'], dilation,
             a['groups']))


def _retarget(node, name, gm):
    """The runtime call (target, args) for `node`, or None when it is no convolution or norm."""
    if name in ('aten::conv1d', 'aten::conv2d', 'aten::conv3d', 'aten::convolution', 'aten::_convolution',
                'aten::_convolution.deprecated', 'aten::conv1d.padding', 'aten::conv2d.padding',
                'aten::conv3d.padding', 'aten::conv_transpose1d', 'aten::conv_transpose2d.input',
                'aten::conv_transpose3d.input', 'aten::miopen_convolution', 'aten::miopen_depthwise_convolution',
                'aten::miopen_convolution_transpose', 'aten::cudnn_convolution',
                'aten::cudnn_convolution_transpose', 'aten::convolution_backward', 'aten::batch_norm',
                'aten::instance_norm'):
        a = node.normalized_arguments(gm, normalize_to_only_use_kwargs=True).kwargs
    else:
        return None
    if name in ('aten::batch_norm', 'aten::instance_norm'):
        op = torch.ops.rdna1.batch_norm if name == 'aten::batch_norm' else torch.ops.rdna1.instance_norm
        schema = op.default._schema
        return op.default, tuple(a[arg.name] for arg in schema.arguments)
    if name == 'aten::convolution_backward':
        schema = torch.ops.rdna1.conv_backward.default._schema
        return torch.ops.rdna1.conv_backward.default, tuple(a[arg.name] for arg in schema.arguments)
    spatial = _spatial_dims(node)
    if name.endswith('.padding'):
        return _string_padding_call(a, spatial)
    if name.startswith('aten::conv_transpose'):
        return _conv_call(a, spatial, True)
    if name.startswith('aten::conv') and name != 'aten::convolution':
        return _conv_call(a, spatial, False, output_padding=0)
    if 'transpose' in name:  # cudnn_/miopen_convolution_transpose
        return _conv_call(a, spatial, True)
    return _conv_call(a, spatial, a.get('transposed', False))


class GraphReport:
    """What was rewritten in one graph: {op name: count} of convolutions and norms, the op
    names left that still reach cuDNN/MIOpen (warnings), and those that cannot be rewritten."""

    def __init__(self, method):
        self.method = method
        self.convolutions, self.norms = {}, {}
        self.remaining_dnn_users, self.unsupported = [], []
        self.backend_changed = False

    def changed(self):
        return bool(self.convolutions or self.norms or self.backend_changed)


def _remaining_dnn_users():
    import rdna1
    return frozenset(rdna1._tools().remaining_dnn_users())


def _rewrite_graph(gm, method, backend):
    report = GraphReport(method)
    still_dnn_users = _remaining_dnn_users()
    graph = gm.graph
    for node in list(graph.nodes):
        if node.op != 'call_function':
            continue
        name = _op_name(node.target)
        if not name:
            continue
        call = _retarget(node, name, gm)
        if call is not None:
            kind = report.norms if name in _NORMS_REACHING_DNN else report.convolutions
            kind[name] = kind.get(name, 0) + 1
            node.target, node.args, node.kwargs = call[0], call[1], {}
        elif name.startswith(_UNSUPPORTED_PREFIXES):
            report.unsupported.append(name)
        elif name.split('.')[0] in still_dnn_users:
            report.remaining_dnn_users.append(name)
    if method == 'forward':  # a program that calls the runtime runs with its own default backend
        calls_runtime = any(_op_name(n.target).startswith("rdna1::") for n in graph.nodes
                            if n.op == 'call_function')
        report.backend_changed = _bake_backend(graph, backend, calls_runtime)
    if report.changed():
        graph.lint()
        gm.recompile()
    return report


def _bake_backend(graph, backend, add_if_missing):
    """Puts `rdna1::set_default_backend(backend)` first in the graph, as the TorchScript rewrite
    does at the top of each method (passes/SetDefaultBackend.h): "auto" too, since the call
    resets whatever default another model left on the thread. Replaces an earlier call; adds one
    where none is only if `add_if_missing`. True if the graph changed."""
    baked = [n for n in graph.nodes if n.op == 'call_function'
             and _op_name(n.target) == 'rdna1::set_default_backend']
    if (not baked and not add_if_missing) or (len(baked) == 1 and baked[0].args == (backend,)):
        return False
    for node in baked:
        graph.erase_node(node)
    first = next(n for n in graph.nodes if n.op != 'placeholder')
    with graph.inserting_before(first):
        graph.call_function(torch.ops.rdna1.set_default_backend.default, (backend,))
    return True


def _graphs(gm):
    """(method name, GraphModule) for the program's graph and every subgraph (torch.cond's
    branches, map and while_loop bodies), whose convolutions are the program's too."""
    for name, module in gm.named_modules():
        if isinstance(module, torch.fx.GraphModule):
            yield (f'{name}.forward' if name else 'forward'), module


def _summary(reports):
    def plural(count, noun):
        return f'{count} {noun}{"" if count == 1 else "s"}'
    convolutions = sum(sum(r.convolutions.values()) for r in reports)
    norms = sum(sum(r.norms.values()) for r in reports)
    methods = sum(1 for r in reports if r.convolutions or r.norms)
    line = f'rewrote {plural(convolutions, "convolution layer")}'
    if norms:
        line += f' and {plural(norms, "norm layer")}'
    return line + f' ({plural(convolutions + norms, "code site")} in {plural(methods, "method")})'


def _report(reports, source, output, backend):
    """The report of docs/report.md (version 2), for an exported program."""
    convolutions = sum(sum(r.convolutions.values()) for r in reports)
    norms = sum(sum(r.norms.values()) for r in reports)
    return {
        'version': 2, 'format': 'exported_program', 'input': source, 'output': output,
        'convolution_layers': convolutions, 'norm_layers': norms, 'convolutions': convolutions, 'norms': norms,
        'host_regions': 0, 'default_backend': backend, 'region_decisions': [],
        'methods': [{'class': 'ExportedProgram', 'method': r.method, 'convolutions': r.convolutions,
                     'norms': r.norms, 'remaining_dnn_users': r.remaining_dnn_users}
                    for r in reports if r.changed() or r.remaining_dnn_users],
    }


def _warnings(reports):
    return [f'{name} in ExportedProgram.{r.method} is not rewritten and will still reach cuDNN/MIOpen on a GPU'
            for r in reports for name in r.remaining_dnn_users]


def _copy_graph_module(original):
    """A deep copy whose nodes keep their names: the program's signature names its inputs by
    node name, and a copy made through FX renames those that shadow Python's builtins (a
    placeholder 'input' becomes 'input_1')."""
    graph_module = copy.deepcopy(original)
    for (_, old), (_, new) in zip(_graphs(original), _graphs(graph_module)):
        for old_node, new_node in zip(old.graph.nodes, new.graph.nodes):
            new_node.name = old_node.name
        new.recompile()
    return graph_module


def rewrite_program(program, backend='auto', strict=False, what='the program'):
    """Rewrites an ExportedProgram. Returns (rewritten program, reports); the rewritten program
    shares the original's weights and buffers (as its .module() does), never its graph, and is
    the original itself when nothing changed. Raises RewriteError (exit 3) where a node would
    still reach cuDNN/MIOpen."""
    if backend not in ('auto', 'host', 'device', 'vendor'):
        raise _error(1, f"backend must be 'auto', 'host', 'device' or 'vendor', got '{backend}'")
    graph_module = _copy_graph_module(program.graph_module)
    reports = [_rewrite_graph(gm, method, backend) for method, gm in _graphs(graph_module)]
    for r in reports:
        if r.unsupported:
            raise _error(EXIT_CANNOT_REWRITE, f'cannot rewrite {what}: unsupported node {r.unsupported[0]} in '
                                              f'ExportedProgram.{r.method} would still reach cuDNN/MIOpen')
        if strict and r.remaining_dnn_users:
            raise _error(EXIT_CANNOT_REWRITE, f'cannot rewrite {what}: {r.remaining_dnn_users[0]} in '
                                              f'ExportedProgram.{r.method} would still reach cuDNN/MIOpen (--strict)')
    if not any(r.changed() for r in reports):
        return program, reports
    return program._update(graph_module, program.graph_signature), reports


# ---------------------------------------------------------------------------------------------
# Files.

def archive_kind(path):
    """'exported_program' for a torch.export.save archive, 'aoti_package' for an AOTInductor
    package, None for anything else (TorchScript, not a zip). Reads the zip's names only."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    records = {name.split('/', 1)[1] for name in names if '/' in name}
    if 'archive_format' not in records:
        return None
    if any(r.startswith('data/aotinductor/') for r in records):
        return 'aoti_package'
    if any(r.startswith('models/') and r.endswith('.json') for r in records):
        return 'exported_program'
    return None


def _check_input(path):
    if not os.path.exists(path):
        raise _error(EXIT_BAD_INPUT, f"cannot read '{path}': no such file")
    if os.path.isdir(path):
        raise _error(EXIT_BAD_INPUT, f"cannot read '{path}': it is a directory")
    kind = archive_kind(path)
    if kind == 'aoti_package':
        raise _error(EXIT_BAD_INPUT, f"'{path}' is an AOTInductor package (compiled code), not a program: "
                                     f'rewrite the exported program, then compile it (rdna1.aot_compile)')
    if kind != 'exported_program':
        raise _error(EXIT_BAD_INPUT, f"'{path}' is not a torch.export program (.pt2 from torch.export.save)")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (OSError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError) as error:
        raise _error(EXIT_BAD_INPUT, f"cannot read '{path}': {_first_line(error)}") from None
    if damaged is not None:
        raise _error(EXIT_BAD_INPUT, f"cannot read '{path}': entry '{damaged}' does not match its CRC-32 "
                                     f'(the file is damaged)')


def _check_output(source, output):
    if os.path.exists(output) and os.path.samefile(source, output):
        raise _error(EXIT_CANNOT_WRITE, f"refusing to overwrite the input '{source}': choose another OUT")
    if os.path.isdir(output):
        raise _error(EXIT_CANNOT_WRITE, f"cannot write '{output}': it is a directory")
    if os.path.exists(output) and not os.path.isfile(output):
        raise _error(EXIT_CANNOT_WRITE, f"cannot write '{output}': it is not a regular file (a device, pipe or socket)")
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        raise _error(EXIT_CANNOT_WRITE, f"cannot write '{output}': no directory '{parent}'")
    if not os.access(parent, os.W_OK):
        raise _error(EXIT_CANNOT_WRITE, f"cannot write '{output}': directory '{parent}' is not writable")


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _saved_format_mismatch(path):
    """Why this torch cannot read the program's serialized format (another major version of
    torch.export's schema), or None. torch.export.load itself only logs that as a warning."""
    try:
        from torch._export.serde.schema import SCHEMA_VERSION
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.split('/', 1)[-1].startswith('models/')
                        and n.endswith('.json'))
            saved = json.loads(archive.read(name))['schema_version']
    except Exception:  # no schema to compare: torch.export.load says what is wrong
        return None
    if saved.get('major') == SCHEMA_VERSION[0]:
        return None
    return (f"it was saved by a torch whose export format this torch {torch.__version__} cannot read "
            f"(schema {saved.get('major')}.{saved.get('minor')}, this torch reads "
            f'{SCHEMA_VERSION[0]}.x); rewrite it with rdna1 on the torch that exported it')


def load_program(path):
    """torch.export.load, its failures as RewriteError (exit 2) with one line."""
    _check_input(path)
    mismatch = _saved_format_mismatch(path)
    if mismatch:
        raise _error(EXIT_BAD_INPUT, f"cannot load '{path}': {mismatch}")
    try:
        with open(path, 'rb') as f:  # a file object: torch.export.load refuses paths without .pt2
            return torch.export.load(f)
    except Exception as error:  # torch raises many kinds here (SerializeError, KeyError, ...)
        raise _error(EXIT_BAD_INPUT, f"cannot load '{path}': {_first_line(error)}") from None


def _write_atomically(output, write):
    """write(temporary path), then renames it over `output`: readers see the old file or the
    whole new one."""
    temporary = f'{output}.tmp-{os.getpid()}.pt2'  # torch.export.save warns about other suffixes
    try:
        write(temporary)
        with open(temporary, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(temporary, output)
    except BaseException as error:
        try:
            os.remove(temporary)
        except OSError:
            pass
        import rdna1
        if isinstance(error, rdna1.RewriteError):
            raise
        if isinstance(error, OSError):
            raise _error(EXIT_CANNOT_WRITE, f"cannot write '{output}': {error.strerror or error}") from None
        if isinstance(error, Exception):
            raise _error(EXIT_CANNOT_WRITE, f"cannot write '{output}': {_first_line(error)}") from None
        raise


def rewrite(source, output=None, backend='auto', dry_run=False, strict=False, check_written=None):
    """rdna1.rewrite for exported programs: `source` is an ExportedProgram or the path of a .pt2
    saved by torch.export.save. Returns rdna1.RewriteResult; with a program, `.module` is the
    rewritten ExportedProgram (written to `output` too if given). `check_written(program, path)`,
    if given, sees the original program and the written file before it replaces `output` (also
    for a dry run, in a temporary directory) and may refuse it by raising RewriteError."""
    import rdna1
    if isinstance(source, (str, os.PathLike)):
        source = os.fspath(source)
        if not available():
            raise _error(EXIT_BAD_INPUT, _unavailable_message(f"'{source}'"))
        if output is None and not dry_run:
            raise ValueError('rdna1.rewrite: give an output path (or dry_run=True) for a model file')
        output = None if dry_run or output is None else os.fspath(output)
        _check_input(source)
        if output is not None:
            _check_output(source, output)
        program = load_program(source)
        what = f"'{source}'"
    else:
        program, what = source, 'the program'
        output = None if dry_run or output is None else os.fspath(output)
    rewritten, reports = rewrite_program(program, backend, strict, what)
    unchanged = rewritten is program
    name = source if isinstance(source, str) else '<ExportedProgram>'
    destination = ' (dry run, nothing written)' if output is None and dry_run else \
        (f' -> {output}' if output is not None else '')
    if unchanged:
        summary = f'nothing to rewrite in {name} (no convolution, or already rewritten)'
        if output is not None and isinstance(source, str):
            summary += '; copied unchanged, byte for byte' + destination
        else:
            summary += destination
    else:
        summary = _summary(reports) + (f', default backend {backend}' if backend != 'auto' else '') \
            + destination
    def write(path):
        if unchanged and isinstance(source, str):
            shutil.copyfile(source, path)
        else:
            torch.export.save(rewritten, path)
        if check_written is not None:
            check_written(program, path)

    if output is not None:
        _write_atomically(output, write)
    elif check_written is not None:
        with tempfile.TemporaryDirectory() as directory:
            write(os.path.join(directory, 'rewritten.pt2'))
    report = _report(reports, name, output or '', backend)
    return rdna1.RewriteResult(summary, report, _warnings(reports),
                               None if isinstance(source, str) else rewritten)


def is_program(source):
    """Whether rdna1.rewrite should treat `source` as an exported program: an ExportedProgram,
    or a file whose archive records say it is one (by content, whatever its suffix)."""
    if available() and isinstance(source, torch.export.ExportedProgram):
        return True
    return isinstance(source, (str, os.PathLike)) and archive_kind(os.fspath(source)) is not None
