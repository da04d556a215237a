#!/usr/bin/python3
"""Training-mode state on the stand-in device (host tensors copied at every bus crossing, as a GPU
would see them): after train-mode forwards of a rewritten resnet18, scripted and traced, in every
regions mode, the whole state_dict (parameters, running statistics, num_batches_tracked) matches the
original's. On the plain CPU path a lost copy-back is invisible; here it is not."""
import os
import shutil
import tempfile
import unittest

import torch

import rdna1
import sample_models
from e2e_support import inlined_kinds, rewrite

FORWARDS = 3
REGION_MODES = ('auto', 'max', 'conv', 'per-op')


def train_forwards(module, shape, count=FORWARDS):
    module.train()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(count):
            module(torch.randn(shape, generator=generator))


def assert_same_state(test, got, want, tolerance):
    got, want = got.state_dict(), want.state_dict()
    test.assertEqual(sorted(got), sorted(want))
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=tolerance, atol=tolerance,
                                   msg=lambda m, key=key: f'{key}: {m}')


class StandInTrainingStateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rdna1.set_stand_in_device(True)
        cls.dir = tempfile.mkdtemp()
        model, _ = sample_models.build('resnet18')
        cls.shape = sample_models.SAMPLES['resnet18'][1]
        cls.inputs = {}
        scripted = os.path.join(cls.dir, 'resnet18_scripted.pt')
        torch.jit.script(model).save(scripted)
        # Traced in training mode, so the trace keeps batch norm's training branch.
        traced = os.path.join(cls.dir, 'resnet18_traced.pt')
        torch.jit.trace(model.train(), torch.randn(cls.shape)).save(traced)
        cls.archives = {'scripted': scripted, 'traced': traced}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)
        rdna1.set_stand_in_device(False)

    def rewritten(self, mode, regions):
        out = os.path.join(self.dir, f'resnet18_{mode}_{regions}.rdna1.pt')
        result = rewrite(f'--regions={regions}', self.archives[mode], out)
        self.assertEqual(result.returncode, 0, result.stderr)
        return out

    def test_running_statistics_reach_the_module_in_every_regions_mode(self):
        for mode in self.archives:
            original = torch.jit.load(self.archives[mode])
            train_forwards(original, self.shape)
            moved = [k for k, v in original.state_dict().items() if k.endswith('running_mean') and v.abs().sum() > 0]
            self.assertTrue(moved, 'the original\'s running statistics did not move: nothing is tested')
            for regions in REGION_MODES:
                with self.subTest(mode=mode, regions=regions):
                    rewritten = rdna1.load(self.rewritten(mode, regions))
                    train_forwards(rewritten, self.shape)
                    assert_same_state(self, rewritten, original, 1e-5)

    def test_copy_back_survives_loading(self):
        for mode in self.archives:
            with self.subTest(mode=mode):
                module = rdna1.load(self.rewritten(mode, 'auto'))
                self.assertIn('rdna1::copy_back', inlined_kinds(module))

    def test_boundaries_copy_on_the_stand_in_device(self):
        module = rdna1.load(self.rewritten('scripted', 'auto')).eval()
        rdna1.reset_counters()
        with torch.no_grad():
            module(torch.randn(self.shape))
        counters = rdna1.counters()
        self.assertGreater(counters['to_host_copies'], 0)
        self.assertGreater(counters['to_device_copies'], 0)
        self.assertGreater(counters['param_copies'] + counters['param_hits'], 0)


if __name__ == '__main__':
    unittest.main()
