"""Host regions on whole architectures (issue 14): the scripted densenet121, shufflenet_v2_x1_0 and
mobilenet_v2 forward graphs hold one region each (at most 2 rdna1::to_host nodes, shown by
`rdna1-rewrite --emit=ir`); efficientnet_b0, whose stochastic depth branches on `training`, gets
an eval path, outlined: forward only chooses between `_rdna1_training_forward` (10 regions) and
`_rdna1_eval_forward` (one); deeplabv3_mobilenet_v3_large's eval copy has at most 3 (its
backbone's dict lookups folded, F.interpolate's branches hosted; it had 19); the flags their
branches read are frozen and reported; with --train-regions=conv, mobilenet_v2's forward chooses
between a conv-regions copy for training and an auto one for eval; by default (--train-regions=bus)
training mode has both an auto and a conv copy and the runtime picks one per call; and on the
stand-in device (every crossing a real copy) each computes
what the original does: outputs in eval mode, and the whole state_dict after three training-mode
forwards (the same random numbers for both), in float64."""
import json
import os
import tempfile
import unittest

import torch
import torchvision

import e2e_support as support
import rdna1

ONE_REGION = ('densenet121', 'shufflenet_v2_x1_0', 'mobilenet_v2')
EVAL_PATH = ('efficientnet_b0',)
SEGMENTATION = ('deeplabv3_mobilenet_v3_large',)
MODELS = ONE_REGION + EVAL_PATH + SEGMENTATION


def build(name):
    if name in SEGMENTATION:
        return getattr(torchvision.models.segmentation, name)(
            weights=None, weights_backbone=None, num_classes=5).eval()
    return getattr(torchvision.models, name)().eval()


def main_output(y):
    return y['out'] if isinstance(y, dict) else y


def method_ir(stdout, method):
    """The 'graph of <method>:' section that --emit=ir prints, or None."""
    sections = stdout.split('graph of ')
    return next((s for s in sections if s.startswith(method + ':')), None)


class RegionsOnWholeArchitectures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix='rdna1-regions-')
        cls.paths = {}
        for name in MODELS:
            torch.manual_seed(0)
            path = os.path.join(cls.dir, f'{name}.pt')
            torch.jit.script(build(name)).save(path)
            cls.paths[name] = path

    def test_forward_has_one_region_and_reports_frozen_flags(self):
        flags = {'densenet121': 'memory_efficient', 'shufflenet_v2_x1_0': 'stride',
                 'mobilenet_v2': 'use_res_connect', 'efficientnet_b0': 'use_res_connect',
                 'deeplabv3_mobilenet_v3_large': 'return_layers'}
        for name in MODELS:
            with self.subTest(name):
                result = support.run(support.TOOL, self.paths[name], '--dry-run', '--emit=ir',
                                     '--report=' + os.path.join(self.dir, f'{name}.json'))
                self.assertEqual(result.returncode, 0, result.stderr)
                forward = method_ir(result.stdout, 'forward')
                eval_copy = method_ir(result.stdout, '_rdna1_eval_forward')
                if name in EVAL_PATH:
                    self.assertIsNotNone(eval_copy, result.stdout[:2000])
                if eval_copy is not None:
                    self.assertNotIn('rdna1::to_host(', forward)
                    self.assertIn('prim::CallMethod[name="_rdna1_training_forward"]', forward)
                    self.assertIn('prim::CallMethod[name="_rdna1_eval_forward"]', forward)
                # Without an eval copy (it would save no crossing) eval mode takes the auto
                # training copy.
                ir = eval_copy or method_ir(result.stdout, '_rdna1_training_forward') or forward
                self.assertGreaterEqual(ir.count('rdna1::to_host('), 1, ir)
                self.assertNotIn('prim::GetAttr[name="' + flags[name] + '"]', ir)
                with open(os.path.join(self.dir, f'{name}.json')) as f:
                    decisions = json.load(f)['region_decisions']
                # F.interpolate's rank check around the upsample sits inside a region.
                self.assertEqual([d for d in decisions if 'upsample' in d and 'ends before' in d], [])
                self.assertTrue(any(flags[name] + ' x' in d for d in decisions), decisions)
                limit = 3 if name in SEGMENTATION else 2
                self.assertLessEqual(ir.count('rdna1::to_host('), limit, ir)

    def test_training_mode_gets_regions_of_its_own_mode(self):
        """--train-regions=conv: forward chooses between a copy with conv regions for training and
        one with auto regions for eval, by the modules' training flags."""
        name = 'mobilenet_v2'
        result = support.run(support.TOOL, self.paths[name], '--dry-run', '--emit=ir', '--train-regions=conv',
                             '--report=' + os.path.join(self.dir, f'{name}.train.json'))
        self.assertEqual(result.returncode, 0, result.stderr)
        forward = method_ir(result.stdout, 'forward')
        self.assertNotIn('rdna1::to_host(', forward)
        self.assertIn('prim::CallMethod[name="_rdna1_training_forward"]', forward)
        training = method_ir(result.stdout, '_rdna1_training_forward')
        self.assertLessEqual(method_ir(result.stdout, '_rdna1_eval_forward').count('rdna1::to_host('), 2)
        # conv: a region per convolution (52), the norms between them on the device.
        self.assertGreaterEqual(training.count('rdna1::to_host('), 40, training)
        with open(os.path.join(self.dir, f'{name}.train.json')) as f:
            decisions = json.load(f)['region_decisions']
        self.assertTrue(any(d.startswith('forward: a copy for training mode with conv regions and one for '
                                         'eval mode with auto') for d in decisions), decisions)
        for bad, message in ((['--train-regions=per-op'], "train-regions must be 'auto', 'max', 'conv' or "
                              "'bus', got 'per-op'"),
                             (['--regions=per-op', '--train-regions=conv'], "train-regions needs regions")):
            result = support.run(support.TOOL, self.paths[name], '--dry-run', *bad)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn(message, result.stderr)
        self.check_on_stand_in(name, train_regions='conv')

    def test_bus_chooses_the_training_copy_by_default(self):
        """The default (--train-regions=bus): training mode has a copy with auto regions and one
        whose convolutions alone run on the host, each on its own (no regions), and forward asks the runtime which to take for its input's device (eval mode
        takes the auto copy where an eval copy saves no crossing); on the CPU
        (and the stand-in device) it takes auto, RDNA1_TRAIN_REGIONS=conv forces the other; both
        compute what the original does. --train-regions=auto keeps one training copy."""
        name = 'mobilenet_v2'
        result = support.run(support.TOOL, self.paths[name], '--dry-run', '--emit=ir')
        self.assertEqual(result.returncode, 0, result.stderr)
        forward = method_ir(result.stdout, 'forward')
        self.assertNotIn('rdna1::to_host(', forward)
        order = [forward.find(s) for s in ('rdna1::train_with_conv_regions(',
                                           'prim::CallMethod[name="_rdna1_training_conv_forward"]',
                                           'prim::CallMethod[name="_rdna1_training_forward"]')]
        self.assertTrue(all(i >= 0 for i in order) and order == sorted(order), forward)
        # Its one dropout follows the last region, so an eval copy would save no crossing: eval
        # mode takes the auto copy (the training branch and the eval branch both call it).
        self.assertEqual(forward.count('prim::CallMethod[name="_rdna1_training_forward"]'), 2, forward)
        self.assertIsNone(method_ir(result.stdout, '_rdna1_eval_forward'))
        # The conv copy: no regions, each of the 52 convolutions moves its own operands.
        conv_copy = method_ir(result.stdout, '_rdna1_training_conv_forward')
        self.assertNotIn('rdna1::to_host(', conv_copy)
        self.assertEqual(conv_copy.count('rdna1::conv('), 52, conv_copy)
        self.assertLessEqual(method_ir(result.stdout, '_rdna1_training_forward').count('rdna1::to_host('), 2)
        single = support.run(support.TOOL, self.paths[name], '--dry-run', '--emit=ir', '--train-regions=auto')
        self.assertEqual(single.returncode, 0, single.stderr)
        self.assertNotIn('train_with_conv_regions', single.stdout)
        self.assertFalse(rdna1.train_with_conv_regions('cpu'))
        self.assertEqual(rdna1.bus_bandwidth('cpu'), 0.0)
        for choice in ('auto', 'conv'):
            with self.subTest(choice):
                self.check_on_stand_in(name, choice=choice)

    def test_outputs_and_training_state_match_on_the_stand_in_device(self):
        for name in MODELS:
            with self.subTest(name):
                self.check_on_stand_in(name)

    def check_on_stand_in(self, name, train_regions=None, choice=None):
        """`choice`: RDNA1_TRAIN_REGIONS for the run, and the training copy it must take."""
        rdna1.set_stand_in_device(True)
        if choice:
            os.environ['RDNA1_TRAIN_REGIONS'] = choice
        rdna1.reset_counters()
        try:
            out = os.path.join(self.dir, f'{name}.{train_regions}.rdna1.pt')
            if not os.path.exists(out):  # the same rewrite for every choice
                rdna1.rewrite(self.paths[name], out, train_regions=train_regions)
            original = torch.jit.load(self.paths[name]).double()
            ours = rdna1.load(out).double()
            torch.manual_seed(1)
            x = torch.randn(2, 3, 64, 64, dtype=torch.double)
            original.eval()
            ours.eval()
            with torch.no_grad():
                torch.testing.assert_close(main_output(ours(x)), main_output(original(x)),
                                           rtol=1e-9, atol=1e-9)
            original.train()
            ours.train()
            for step in range(3):
                x = torch.randn(2, 3, 64, 64, dtype=torch.double)
                torch.manual_seed(10 + step)
                want_out = main_output(original(x))
                torch.manual_seed(10 + step)
                torch.testing.assert_close(main_output(ours(x)), want_out, rtol=1e-9, atol=1e-9)
            want, got = original.state_dict(), ours.state_dict()
            self.assertEqual(sorted(want), sorted(got))
            for key in want:
                torch.testing.assert_close(got[key], want[key], rtol=1e-9, atol=1e-9,
                                           msg=f'{name}: {key}')
            if choice:
                self.assertEqual(rdna1.counters()[f'trainings_with_{choice}_regions'], 3)
        finally:
            rdna1.set_stand_in_device(False)
            os.environ.pop('RDNA1_TRAIN_REGIONS', None)

if __name__ == '__main__':
    unittest.main()
