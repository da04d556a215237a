"""python3 -m rdna1 IN OUT [options]: the rdna1-rewrite command line, where LLVM is not installed.

Same options, messages and exit codes as rdna1-rewrite for what it offers (no --verify): 0 done,
1 bad command line, 2 IN missing or not a model, 3 a node would still reach cuDNN/MIOpen
(--strict), 4 OUT cannot be written, 6 internal error (docs/cli.md)."""
import argparse
import json
import sys

import rdna1

EXIT_USAGE, EXIT_INTERNAL = 1, 6


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit code, 2, means bad input to the tool
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f'{self.prog}: error: {message}\n')


def main(argv=None):
    parser = _Parser(prog='python3 -m rdna1', description=rdna1.rewrite.__doc__.split('\n')[0])
    parser.add_argument('input', nargs='?', help='a TorchScript model (scripted, traced or frozen)')
    parser.add_argument('output', nargs='?', help='where the rewritten model goes')
    parser.add_argument('--regions', default='auto', choices=['auto', 'per-op'],
                        help='auto: host regions between bus crossings (default); per-op: none, each '
                             'convolution moves its own operands')
    parser.add_argument('--backend', default='auto', choices=['auto', 'host', 'device', 'vendor'],
                        help='default backend baked into OUT')
    parser.add_argument('--report', metavar='FILE.json', help='the report as JSON; - for standard output')
    parser.add_argument('--dry-run', action='store_true', help='rewrite in memory; write nothing')
    parser.add_argument('--strict', action='store_true',
                        help='refuse nodes that are not rewritten but still reach cuDNN/MIOpen')
    parser.add_argument('--probe', action='store_true', help="print the device probe's verdicts and exit")
    parser.add_argument('--version', action='version', version=f'rdna1 {rdna1.__version__}')
    args = parser.parse_args(argv)
    if args.probe:
        print(rdna1.probe())
        return 0
    if not args.input or not (args.output or args.dry_run):
        parser.print_usage(sys.stderr)
        print('python3 -m rdna1: error: give IN and OUT (or --dry-run)', file=sys.stderr)
        return EXIT_USAGE
    try:
        result = rdna1.rewrite(args.input, args.output, args.regions, args.backend, args.dry_run, args.strict)
    except rdna1.RewriteError as error:
        print(f'python3 -m rdna1: error: {error}', file=sys.stderr)
        return error.exit_code
    except RuntimeError as error:  # not the tool's own refusal: a bug, or a missing runtime
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f'python3 -m rdna1: error: {message}', file=sys.stderr)
        return EXIT_INTERNAL
    for warning in result.warnings:
        print(f'python3 -m rdna1: warning: {warning}', file=sys.stderr)
    if args.report == '-':
        print(json.dumps(result.report, indent=2))
    elif args.report:
        with open(args.report, 'w') as f:
            json.dump(result.report, f, indent=2)
    print(result.summary, file=sys.stderr if args.report == '-' else sys.stdout)
    return 0


if __name__ == '__main__':
    sys.exit(main())
