#!/usr/bin/env python3
"""Bus crossings per forward, on any machine (no GPU needed): the rdna1::to_host nodes in the
rewritten forward graph (`rdna1-rewrite --emit=ir`) of issue 14's pure CNNs, and how many of them
one eval-mode forward runs. Where forward got an eval path, it only chooses between two outlined
copies, `_rdna1_training_forward` and `_rdna1_eval_forward`, and the counts are theirs. Run from
the repository root after the build:

    /usr/bin/python3 bench/region_counts.py
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, os.pardir, 'python'))
os.environ.setdefault('RDNA1_RUNTIME', os.path.join(HERE, os.pardir, 'build', 'lib', 'librdna1_runtime.so'))
import backends  # noqa: E402  (deeplabv3_resnet50 as benchmarked: its 'out' tensor)
import benchmark  # noqa: E402

TOOL = os.path.join(HERE, os.pardir, 'build', 'bin', 'rdna1-rewrite')
EVAL_PATH = re.compile(r'^forward: eval path: .*, (\d+) to_host in eval mode instead of (\d+)')


def count(name, module, work):
    path, report = os.path.join(work, name + '.pt'), os.path.join(work, name + '.json')
    torch.jit.script(module.eval()).save(path)
    out = subprocess.run([TOOL, path, '--dry-run', '--emit=ir', '--report=' + report],
                         capture_output=True, text=True, check=True)
    sections = {s.split(':', 1)[0]: s for s in out.stdout.split('graph of ')}
    with open(report) as f:
        found = [EVAL_PATH.search(d) for d in json.load(f)['region_decisions']]
    found = [m for m in found if m]
    copies = [m for m in ('forward', '_rdna1_training_forward', '_rdna1_eval_forward') if m in sections]
    total = sum(sections[m].count('rdna1::to_host(') for m in copies)
    per_eval = (f"{sections['_rdna1_eval_forward'].count('rdna1::to_host(')} (eval path; training mode "
                f"{sections['_rdna1_training_forward'].count('rdna1::to_host(')}; report: "
                f"{found[0].group(1)} instead of {found[0].group(2)})" if found
                else f'{total} (one copy of the method)')
    print(f'| {name} | {total} | {per_eval} |', flush=True)


def main():
    print('| model | rdna1::to_host in forward and its copies | run by one eval forward |')
    print('| --- | --- | --- |')
    with tempfile.TemporaryDirectory() as work:
        for name in ('resnet18', 'resnet50', 'mobilenet_v2', 'efficientnet_b0', 'densenet121',
                     'shufflenet_v2_x1_0'):
            torch.manual_seed(0)
            count(name, getattr(torchvision.models, name)(), work)
        count('deeplabv3_resnet50', backends.deeplabv3(), work)
        count('unet', benchmark.MODELS['unet'][0](), work)


if __name__ == '__main__':
    main()
