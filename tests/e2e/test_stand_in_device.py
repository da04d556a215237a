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
REGION_MODES = ('auto', 'per-op')


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


class TutorialNet(torch.nn.Module):
    """The CIFAR-10 tutorial's network, with a norm: it flattens a feature map with x.view(-1, n),
    which only works on the layout the model made (host tensors are channels-last)."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 6, 5)
        self.pool = torch.nn.MaxPool2d(2, 2)
        self.conv2 = torch.nn.Conv2d(6, 16, 5)
        self.norm = torch.nn.BatchNorm2d(16)
        self.fc = torch.nn.Linear(16 * 5 * 5, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        features = self.pool(torch.relu(self.norm(self.conv2(x))))
        return self.fc(features.view(-1, 16 * 5 * 5)), features


class WriteThroughReshape(torch.nn.Module):
    """reshape of a contiguous feature map shares its storage, and the write through it reaches
    the second convolution; on the channels-last host a hosted reshape would copy instead."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3)
        self.conv2 = torch.nn.Conv2d(8, 4, 3)

    def forward(self, x):
        c = self.conv1(x)
        flat = c.reshape(c.size(0), -1)
        flat.add_(1.0)
        return self.conv2(c), flat


class StandInLayoutTest(unittest.TestCase):
    """On the stand-in device tensors cross as on a GPU: channels-last on the host. A model that
    views a feature map must still run, and what it gets back must have the layout it made."""

    @classmethod
    def setUpClass(cls):
        rdna1.set_stand_in_device(True)
        cls.dir = tempfile.mkdtemp()
        torch.manual_seed(0)
        cls.model = TutorialNet().double()
        cls.source = os.path.join(cls.dir, 'tutorial.pt')
        torch.jit.script(cls.model).save(cls.source)
        cls.x = torch.randn(4, 3, 32, 32, dtype=torch.double)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)
        rdna1.set_stand_in_device(False)

    def rewritten(self, *options):
        out = os.path.join(self.dir, 'tutorial' + ''.join(options).replace('-', '_') + '.rdna1.pt')
        result = rewrite(*options, self.source, out)
        self.assertEqual(result.returncode, 0, result.stderr)
        return rdna1.load(out)

    def test_viewed_feature_map_in_every_mode(self):
        original = torch.jit.load(self.source)
        for options in (['--regions=auto'], ['--regions=per-op']):
            for training in (False, True):
                with self.subTest(options=options, training=training):
                    rewritten = self.rewritten(*options)
                    rewritten.load_state_dict(original.state_dict())
                    want, got = original.train(training), rewritten.train(training)
                    (logits, features), (want_logits, want_features) = got(self.x), want(self.x)
                    torch.testing.assert_close(logits, want_logits, rtol=1e-9, atol=1e-9)
                    self.assertEqual(features.is_contiguous(), want_features.is_contiguous())
                    if training:
                        got.zero_grad()
                        want.zero_grad()
                        logits.square().sum().backward()
                        want_logits.square().sum().backward()
                        for (name, a), b in zip(got.named_parameters(), want.parameters()):
                            torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-9,
                                                       msg=lambda m, name=name: f'{name}: {m}')

    def test_write_through_a_reshape_reaches_its_base(self):
        source = os.path.join(self.dir, 'write_through_reshape.pt')
        torch.jit.script(WriteThroughReshape().double().eval()).save(source)
        original = torch.jit.load(source)
        want = original(self.x)
        for regions in ('auto', 'per-op'):
            with self.subTest(regions=regions):
                out = os.path.join(self.dir, f'write_through_reshape_{regions}.rdna1.pt')
                result = rewrite(f'--regions={regions}', source, out)
                self.assertEqual(result.returncode, 0, result.stderr)
                got = rdna1.load(out)(self.x)
                for a, b in zip(got, want):
                    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)

    def test_channels_last_model_gets_channels_last_back(self):
        # (The tutorial's view fails on a channels-last model in PyTorch itself.)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                    torch.nn.Conv2d(8, 8, 3)).double().eval()
        source = os.path.join(self.dir, 'features.pt')
        torch.jit.script(model).save(source)
        original = torch.jit.load(source).to(memory_format=torch.channels_last)
        x = self.x.contiguous(memory_format=torch.channels_last)
        want = original(x)
        self.assertTrue(want.is_contiguous(memory_format=torch.channels_last))
        for regions in ('auto', 'per-op'):
            with self.subTest(regions=regions):
                out = os.path.join(self.dir, f'features_{regions}.rdna1.pt')
                result = rewrite(f'--regions={regions}', source, out)
                self.assertEqual(result.returncode, 0, result.stderr)
                got = rdna1.load(out).to(memory_format=torch.channels_last).eval()(x)
                torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
                self.assertTrue(got.is_contiguous(memory_format=torch.channels_last))


if __name__ == '__main__':
    unittest.main()
