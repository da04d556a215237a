"""Host regions on whole architectures: the scripted densenet121, shufflenet_v2_x1_0 and
mobilenet_v2 forward graphs hold one region each (at most 2 rdna1::to_host nodes, shown by
`rdna1-rewrite --emit=ir`); efficientnet_b0, whose stochastic depth branches on `training`, gets
an eval path, outlined: forward only chooses between `_rdna1_training_forward` (10 regions) and
`_rdna1_eval_forward` (one); deeplabv3_mobilenet_v3_large's eval copy has at most 3 (its
backbone's dict lookups folded, F.interpolate's branches hosted; it had 19); the flags their
branches read are frozen and reported; mobilenet_v2 keeps one body for both modes; and on the
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

    def test_mobilenet_v2_trains_with_its_auto_regions(self):
        """One body for both modes: its one dropout follows the last region, so a copy for eval
        mode would save no crossing; no training copy chosen by the bus either."""
        name = 'mobilenet_v2'
        result = support.run(support.TOOL, self.paths[name], '--dry-run', '--emit=ir')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIsNone(method_ir(result.stdout, '_rdna1_eval_forward'))
        self.assertIsNone(method_ir(result.stdout, '_rdna1_training_forward'))
        self.assertNotIn('train_with_conv_regions', result.stdout)
        self.assertLessEqual(method_ir(result.stdout, 'forward').count('rdna1::to_host('), 2)

    def test_outputs_and_training_state_match_on_the_stand_in_device(self):
        for name in MODELS:
            with self.subTest(name):
                self.check_on_stand_in(name)

    def check_on_stand_in(self, name):
        rdna1.set_stand_in_device(True)
        try:
            out = os.path.join(self.dir, f'{name}.rdna1.pt')
            if not os.path.exists(out):
                rdna1.rewrite(self.paths[name], out)
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
        finally:
            rdna1.set_stand_in_device(False)

if __name__ == '__main__':
    unittest.main()
