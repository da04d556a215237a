#!/usr/bin/env python3
"""What a rewritten file costs to load: a torchvision model scripted, rewritten with each
--regions mode, then each file loaded in a fresh process; prints the rewrite time, the load time
and the loading process's peak RSS (each copy of forward is compiled when the file loads:
TorchScript's cost grows faster than the graph).

    load_cost.py [--model efficientnet_b7] [--regions auto,per-op]
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'python'))
import rdna1  # noqa: E402


def load_in_child(path):
    code = ('import resource, sys, time, torch, rdna1; t = time.time(); torch.jit.load(sys.argv[1]); '
            'print(time.time() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)')
    out = subprocess.run([sys.executable, '-c', code, path], check=True, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    seconds, rss_kb = out.stdout.split()
    return float(seconds), int(rss_kb) / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='efficientnet_b7')
    parser.add_argument('--regions', default='auto')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        original = os.path.join(work, 'original.pt')
        torch.jit.script(getattr(torchvision.models, args.model)().eval()).save(original)
        seconds, gb = load_in_child(original)
        print(f'{args.model} original: load {seconds:.1f} s, peak RSS {gb:.2f} GB')
        for choice in args.regions.split(','):
            out = os.path.join(work, f'{choice}.pt')
            start = time.time()
            summary = rdna1.rewrite(original, out, choice).summary
            rewrite_s = time.time() - start
            seconds, gb = load_in_child(out)
            print(f'{args.model} --regions={choice}: rewrite {rewrite_s:.1f} s, load {seconds:.1f} s, '
                  f'peak RSS {gb:.2f} GB  # {summary}')


if __name__ == '__main__':
    main()
