"""rdna1-rewrite for torch.export programs: the C++ tool hands a .pt2 (told by its content) to
this module, run by the Python its build was configured with, with the arguments it was given:

    python -m rdna1.export_cli --prog rdna1-rewrite IN.pt2 OUT.pt2 [options]

Same options, lines and exit codes as for TorchScript (docs/cli.md): 0 done, 1 bad command line,
2 IN unreadable or not a program, 3 a node would still reach cuDNN/MIOpen, 4 OUT cannot be
written, 5 --verify found the programs disagree (OUT not written), 6 internal error.
Exported programs get no host regions (docs/export.md says why): --regions and --train-regions
are accepted and change nothing.
"""
import argparse
import json
import logging
import sys
import warnings

import torch

EXIT_USAGE, EXIT_VERIFY_FAILED, EXIT_INTERNAL = 1, 5, 6
_DTYPES = {'float32': torch.float32, 'float64': torch.float64, 'float16': torch.float16,
           'bfloat16': torch.bfloat16, 'int64': torch.int64}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own code, 2, means bad input to the tool
        self.exit(EXIT_USAGE, f'{self.prog}: error: {message}\n')


def _parser(prog):
    parser = _Parser(prog=prog, add_help=False)
    parser.add_argument('input')
    parser.add_argument('output', nargs='?')
    parser.add_argument('--backend', default='auto', choices=['auto', 'host', 'device', 'vendor'])
    parser.add_argument('--report')
    parser.add_argument('--dry-run', action='store_true')
    parser.add_argument('--strict', action='store_true')
    parser.add_argument('-v', '--verbose', action='store_true')
    parser.add_argument('--emit', choices=['ir'])
    parser.add_argument('--verify', action='store_true')
    parser.add_argument('--verify-grad', action='store_true')
    parser.add_argument('--input-shape', action='append', default=[])
    parser.add_argument('--input-dtype', default='float32', choices=sorted(_DTYPES))
    parser.add_argument('--tolerance', type=float, default=1e-4)
    parser.add_argument('--regions')
    parser.add_argument('--train-regions')
    return parser


def _shape(text):
    parts = text.split('x')
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"invalid shape '{text}': expected positive integers separated by 'x', e.g. 2x3x64x64")
    return [int(p) for p in parts]


def _relative_error(actual, expected):
    worst = 0.0
    for a, e in zip(actual, expected):
        if isinstance(e, torch.Tensor) and e.is_floating_point():
            scale = max(1.0, e.detach().abs().max().item()) if e.numel() else 1.0
            difference = (a.detach().double() - e.detach().double()).abs().max().item() if e.numel() else 0.0
            worst = max(worst, difference / scale)
    return worst


def _run(program, inputs, gradients):
    """The outputs of program.module() on `inputs` (fresh copies), then, with `gradients`, the
    gradients of their sum with respect to the inputs and every parameter."""
    module = program.module()
    inputs = [x.detach().clone().requires_grad_(gradients and x.is_floating_point()) for x in inputs]
    outputs = [o for o in torch.utils._pytree.tree_leaves(module(*inputs)) if isinstance(o, torch.Tensor)]
    if not gradients:
        return outputs, []
    wrt = [x for x in inputs if x.requires_grad] + [p for p in module.parameters() if p.requires_grad]
    total = sum(o.float().sum() for o in outputs if o.requires_grad)
    grads = torch.autograd.grad(total, wrt, allow_unused=True)
    return outputs, [g if g is not None else torch.zeros_like(w) for g, w in zip(grads, wrt)]


class _Verifier:
    """--verify: the original and the written program, each loaded afresh, on the same inputs
    (seeded random ones of --input-shape, else the example inputs saved with the program)."""

    def __init__(self, source, args):
        self.source, self.args, self.result = source, args, None

    def __call__(self, program, path):
        from . import export
        import rdna1
        args = self.args
        if args.input_shape:
            generator = torch.Generator().manual_seed(0)
            dtype = _DTYPES[args.input_dtype]
            inputs = [torch.randn(_shape(s), generator=generator).to(dtype) if dtype != torch.int64
                      else torch.randint(0, 10, _shape(s), generator=generator) for s in args.input_shape]
        elif program.example_inputs is not None and not program.example_inputs[1]:
            inputs = list(program.example_inputs[0])
        else:
            raise rdna1.RewriteError(EXIT_USAGE, '--verify needs --input-shape (e.g. 1x3x224x224): '
                                                 'the program was saved without example inputs')
        try:
            original = export.load_program(self.source)
            expected, expected_grads = _run(original, inputs, args.verify_grad)
            actual, actual_grads = _run(export.load_program(path), inputs, args.verify_grad)
        except rdna1.RewriteError:
            raise
        except Exception as error:
            raise rdna1.RewriteError(EXIT_VERIFY_FAILED,
                                     f'verification could not run the program: {export._first_line(error)}') from None
        output_error = _relative_error(actual, expected)
        gradient_error = _relative_error(actual_grads, expected_grads) if args.verify_grad else -1.0
        worst = max(output_error, gradient_error)
        if worst > args.tolerance:
            which = 'output' if output_error >= gradient_error else 'gradient'
            raise rdna1.RewriteError(EXIT_VERIFY_FAILED, f'verification failed: max relative {which} error {worst:g} '
                                                         f'> tolerance {args.tolerance:g}; nothing written')
        self.result = (output_error, gradient_error)


def main(argv=None, prog='python3 -m rdna1'):
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 2 and argv[0] == '--prog':
        prog, argv = argv[1], argv[2:]
    args = _parser(prog).parse_args(argv)
    if not (args.output or args.dry_run):
        print(f'{prog}: error: missing <out.pt> (or pass --dry-run)', file=sys.stderr)
        return EXIT_USAGE
    # Errors and warnings are the tool's own lines; torch's deprecation notes are not for its users.
    warnings.simplefilter('ignore')
    logging.getLogger('torch').setLevel(logging.ERROR)
    import rdna1
    from . import export
    try:
        for shape in args.input_shape:
            _shape(shape)
    except ValueError as error:
        print(f'{prog}: error: {error}', file=sys.stderr)
        return EXIT_USAGE
    verifier = _Verifier(args.input, args) if (args.verify or args.verify_grad or args.input_shape) else None
    try:
        result = export.rewrite(args.input, args.output, args.backend, args.dry_run, args.strict,
                                check_written=verifier)
        ir = ''
        if args.emit == 'ir':
            program = export.load_program(args.output) if args.output and not args.dry_run else None
            if program is None:  # a dry run: rewrite again in memory to print it
                program = export.rewrite_program(export.load_program(args.input), args.backend)[0]
            ir = ''.join(f'graph of {name}:\n{gm.graph}\n' for name, gm in export._graphs(program.graph_module))
    except rdna1.RewriteError as error:
        print(f'{prog}: error: {error}', file=sys.stderr)
        return error.exit_code
    except Exception as error:  # a bug, or a missing runtime
        print(f'{prog}: error: internal error: {export._first_line(error)}', file=sys.stderr)
        return EXIT_INTERNAL
    if args.verbose:
        for method in result.report['methods']:
            kinds = ' '.join(f'{kind} x{count}' for kind, count in {**method['convolutions'], **method['norms']}.items())
            print(f'{method["class"]}.{method["method"]}: {kinds}', file=sys.stderr)
    for warning in result.warnings:
        print(f'{prog}: warning: {warning}', file=sys.stderr)
    if args.report == '-':
        print(json.dumps(result.report, indent=2))
    elif args.report:
        try:
            with open(args.report, 'w') as f:
                json.dump(result.report, f, indent=2)
        except OSError as error:
            print(f"{prog}: error: cannot write report '{args.report}': {error.strerror}", file=sys.stderr)
            return 4
    sys.stdout.write(ir)
    print(result.summary, file=sys.stderr if args.report == '-' or ir else sys.stdout)
    if verifier is not None and verifier.result is not None:
        output_error, gradient_error = verifier.result
        line = f'verified: max relative output error {output_error:g}'
        if gradient_error >= 0:
            line += f', gradient error {gradient_error:g}'
        print(line + f' (tolerance {args.tolerance:g})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
