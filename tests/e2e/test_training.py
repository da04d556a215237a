#!/usr/bin/python3
"""Training a rewritten model tracks the original: same losses, parameters and batch-norm statistics
after 20 SGD steps (momentum, training mode) on the CPU."""
import os
import shutil
import tempfile
import unittest

import torch

import rdna1
import sample_models
from e2e_support import PYTHON, SOURCE_DIR, rewrite, run, sample
from train_rewritten import train

STEPS = 20


class TrainingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def rewritten(self, name, mode):
        out = os.path.join(self.dir, f'{name}_{mode}.rdna1.pt')
        if not os.path.exists(out):
            result = rewrite(sample(name, mode), out)
            self.assertEqual(result.returncode, 0, result.stderr)
        return out

    def test_losses_and_parameters_track_original(self):
        for name, mode in (('unet', 'scripted'), ('audio', 'traced'), ('resnet18', 'scripted')):
            with self.subTest(sample=(name, mode)):
                shape = sample_models.SAMPLES[name][1]
                original = torch.jit.load(sample(name, mode))
                rewritten = rdna1.load(self.rewritten(name, mode))
                expected = train(original, shape, steps=STEPS)
                actual = train(rewritten, shape, steps=STEPS)
                torch.testing.assert_close(torch.tensor(actual), torch.tensor(expected), rtol=1e-4, atol=1e-5)
                for got, want in zip(rewritten.parameters(), original.parameters()):
                    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
                # Batch norm running statistics are updated the same way in training mode.
                for got, want in zip(rewritten.buffers(), original.buffers()):
                    torch.testing.assert_close(got.float(), want.float(), rtol=1e-4, atol=1e-5)

    def test_training_script_runs(self):
        result = run(PYTHON, os.path.join(SOURCE_DIR, 'samples', 'train_rewritten.py'),
                     self.rewritten('audio', 'scripted'), '2x1x1600', '--steps', '2')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r'step 0: loss \d+\.\d+\nstep 1: loss \d+\.\d+')


if __name__ == '__main__':
    unittest.main()
