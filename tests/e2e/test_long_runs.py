#!/usr/bin/python3
"""Long runs keep memory flat: 10,000 inference steps and 1,000 training steps of a small rewritten
model grow the resident set by less than a few MB after warm-up (the host weight cache, transfer
buffers and autograd state must not accumulate). Device and pinned memory: bench/device_long.py."""
import os
import shutil
import sys
import tempfile
import unittest

import torch

import rdna1
import sample_models
from e2e_support import rewrite, sample

INFERENCE_STEPS, TRAINING_STEPS = 10_000, 1_000
# Allocator noise only: one leaked activation of this model per step would be 10,000 x 25 KB.
GROWTH_LIMIT_MB = 8.0
PAGE_MB = os.sysconf('SC_PAGE_SIZE') / 2**20


def resident_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * PAGE_MB


class LongRunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.path = os.path.join(cls.dir, 'audio.rdna1.pt')
        result = rewrite(sample('audio', 'scripted'), cls.path)
        assert result.returncode == 0, result.stderr
        torch.manual_seed(0)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def assertFlat(self, marks, what):
        warm, end = marks
        print(f'{what}: resident {warm:.1f} MB after warm-up, {end:.1f} MB at the end', file=sys.stderr)
        self.assertLess(end - warm, GROWTH_LIMIT_MB, f'{what}: resident {warm:.1f} MB -> {end:.1f} MB')

    def test_inference_steps(self):
        model = rdna1.load(self.path)
        x = torch.randn(sample_models.SAMPLES['audio'][1])
        marks = []
        with torch.no_grad():
            for step in range(INFERENCE_STEPS):
                model(x + step * 1e-6)  # a new input every step, as in real use
                if step + 1 in (INFERENCE_STEPS // 10, INFERENCE_STEPS):
                    marks.append(resident_mb())
        self.assertFlat(marks, f'{INFERENCE_STEPS} inference steps')

    def test_training_steps(self):
        model = rdna1.load(self.path).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        x = torch.randn(sample_models.SAMPLES['audio'][1])
        marks = []
        for step in range(TRAINING_STEPS):
            optimizer.zero_grad()
            model(x).square().mean().backward()
            optimizer.step()
            if step + 1 in (TRAINING_STEPS // 10, TRAINING_STEPS):
                marks.append(resident_mb())
        self.assertFlat(marks, f'{TRAINING_STEPS} training steps')


if __name__ == '__main__':
    unittest.main()
