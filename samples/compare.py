#!/usr/bin/python3
"""Runs an original and a rewritten model on the same seeded input and prints how far apart
their outputs and gradients are.

    compare.py ORIGINAL.pt REWRITTEN.pt SHAPE [--device cpu|cuda]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, 'python'))
import rdna1  # noqa: E402


def max_differences(original, rewritten, x):
    """Largest |a - b| of the outputs, and of the input and parameter gradients."""
    results = []
    for model in (original, rewritten):
        xi = x.clone().requires_grad_(True)
        y = model(xi)
        y.square().sum().backward()
        results.append((y.detach(), [xi.grad] + [p.grad for p in model.parameters()]))
    (ya, ga), (yb, gb) = results
    output = (ya - yb).abs().max().item()
    grads = max((a - b).abs().max().item() for a, b in zip(ga, gb))
    return output, grads


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('original')
    parser.add_argument('rewritten')
    parser.add_argument('shape', help='input shape, e.g. 2x3x64x64')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    original = torch.jit.load(args.original, map_location=args.device)
    rewritten = rdna1.load(args.rewritten, map_location=args.device)
    torch.manual_seed(0)
    x = torch.randn([int(s) for s in args.shape.split('x')], device=args.device)
    output, grads = max_differences(original, rewritten, x)
    print(f'max |original - rewritten|: output {output:.3g}, gradients {grads:.3g}')


if __name__ == '__main__':
    main()
