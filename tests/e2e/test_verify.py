#!/usr/bin/python3
"""rdna1-rewrite --verify: OUT is written only when the rewritten model agrees with the original."""
import os
import shutil
import tempfile
import unittest

import torch

from e2e_support import rewrite, sample

EXIT_USAGE, EXIT_VERIFY_FAILED = 1, 5


class VerifyTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.out = os.path.join(self.dir, 'out.pt')

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_agreeing_models_are_written_with_the_error(self):
        result = rewrite('--verify', '--input-shape=2x3x64x64', sample('resnet18', 'scripted'), self.out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r'verified: max relative output error \S+ \(tolerance 0.0001\)')
        self.assertTrue(os.path.exists(self.out))

    def test_gradients_are_compared_too(self):
        result = rewrite('--verify-grad', '--input-shape=2x1x1600', sample('audio', 'traced'), self.out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r'gradient error \S+ \(tolerance')

    def test_disagreeing_models_are_not_written(self):
        # Dropout in training mode: the two runs draw different masks, so they disagree.
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Dropout(0.5)).train()
        path = os.path.join(self.dir, 'dropout.pt')
        torch.jit.script(model).save(path)
        result = rewrite('--verify', '--input-shape=1x1x8x8', path, self.out)
        self.assertEqual(result.returncode, EXIT_VERIFY_FAILED, result.stderr)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        self.assertIn('verification failed: max relative output error', result.stderr)
        self.assertEqual(sorted(os.listdir(self.dir)), ['dropout.pt'])

    def test_wrong_input_shape_says_why_in_one_line(self):
        result = rewrite('--verify', '--input-shape=2x3', sample('resnet18', 'scripted'), self.out)
        self.assertEqual(result.returncode, EXIT_VERIFY_FAILED)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertIn('verification could not run the model', lines[0])
        self.assertIn('conv2d', lines[0])
        self.assertFalse(os.path.exists(self.out))

    def test_verify_needs_a_shape(self):
        result = rewrite('--verify', sample('audio', 'scripted'), self.out)
        self.assertEqual(result.returncode, EXIT_USAGE)
        self.assertIn('--verify needs --input-shape', result.stderr)

    def test_bad_shape_is_a_usage_error(self):
        result = rewrite('--verify', '--input-shape=2xfoo', sample('audio', 'scripted'), self.out)
        self.assertEqual(result.returncode, EXIT_USAGE)
        self.assertIn("bad input shape '2xfoo'", result.stderr)

    def test_dry_run_verifies_and_writes_nothing(self):
        result = rewrite('--dry-run', '--verify', '--input-shape=1x3x32x32', sample('unet', 'traced'))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('verified:', result.stdout)
        self.assertEqual(os.listdir(self.dir), [])

    def test_verification_does_not_change_saved_state(self):
        # A model saved in training mode: the verification run must not update the
        # running statistics that are written to OUT.
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).train()
        path = os.path.join(self.dir, 'bn.pt')
        torch.jit.script(model).save(path)
        self.assertEqual(rewrite('--verify', '--input-shape=2x3x8x8', path, self.out).returncode, 0)
        import rdna1
        written = rdna1.load(self.out)
        torch.testing.assert_close(written.state_dict()['1.running_mean'], torch.zeros(4))
        self.assertEqual(int(written.state_dict()['1.num_batches_tracked']), 0)


if __name__ == '__main__':
    unittest.main()
