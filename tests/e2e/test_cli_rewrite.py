#!/usr/bin/python3
"""The CLI on the sample models: no convolution left, same outputs and gradients, report, idempotence."""
import json
import os
import re
import shutil
import tempfile
import unittest

import torch

import rdna1
import sample_models
from e2e_support import (RUN_MODEL, aten_convolutions, digest, inlined_kinds, outputs_and_grads, rewrite, run,
                         sample)

SAMPLES = [(name, mode) for name in sample_models.SAMPLES for mode in ('scripted', 'traced')]
SUMMARY = re.compile(r'^rewrote (?P<layers>\d+) convolution layers?( and \d+ norm layers?)? '
                     r'\(\d+ code sites? in \d+ methods?\)(, \d+ host regions?)? '
                     r'-> (?P<out>.+)$')


class RewriteSamplesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.rewritten = {}
        cls.results = {}
        for name, mode in SAMPLES:
            out = os.path.join(cls.dir, f'{name}_{mode}.rdna1.pt')
            report = os.path.join(cls.dir, f'{name}_{mode}.json')
            cls.results[name, mode] = rewrite(sample(name, mode), out, f'--report={report}')
            cls.rewritten[name, mode] = out

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_summary_line(self):
        for key, result in self.results.items():
            with self.subTest(sample=key):
                self.assertEqual(result.returncode, 0, result.stderr)
                match = SUMMARY.match(result.stdout.strip())
                self.assertIsNotNone(match, result.stdout)
                self.assertGreater(int(match.group('layers')), 0)
                self.assertEqual(match.group('out'), self.rewritten[key])

    def test_input_unchanged(self):
        for name, mode in SAMPLES:
            with self.subTest(sample=(name, mode)):
                original = torch.jit.load(sample(name, mode))
                self.assertTrue(aten_convolutions(inlined_kinds(original)), 'sample has no convolution to rewrite')

    def test_no_convolution_left_in_inlined_graph(self):
        for key, path in self.rewritten.items():
            with self.subTest(sample=key):
                kinds = inlined_kinds(rdna1.load(path))
                self.assertEqual(aten_convolutions(kinds), [])
                self.assertIn('rdna1::conv', kinds)

    def test_no_norm_asks_for_cudnn(self):
        for key, path in self.rewritten.items():
            with self.subTest(sample=key):
                module = rdna1.load(path)  # keep alive: inlining reads its methods
                graph = module.forward.graph.copy()
                torch._C._jit_pass_inline(graph)
                for node in graph.nodes():
                    if node.kind() in ('aten::batch_norm', 'aten::group_norm', 'aten::instance_norm'):
                        flag = list(node.inputs())[-1]
                        self.assertEqual(flag.node().kind(), 'prim::Constant')
                        self.assertFalse(flag.toIValue())

    def test_outputs_and_gradients_match_original(self):
        for (name, mode), path in self.rewritten.items():
            with self.subTest(sample=(name, mode)):
                _, x = sample_models.build(name)
                expected = outputs_and_grads(torch.jit.load(sample(name, mode)), x)
                actual = outputs_and_grads(rdna1.load(path), x)
                torch.testing.assert_close(actual[0], expected[0], rtol=1e-4, atol=1e-4)
                torch.testing.assert_close(actual[1], expected[1], rtol=1e-4, atol=1e-4)
                self.assertEqual(len(actual[2]), len(expected[2]))
                for got, want in zip(actual[2], expected[2]):
                    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)

    def test_report_lists_each_rewritten_method(self):
        for (name, mode), path in self.rewritten.items():
            with self.subTest(sample=(name, mode)):
                with open(os.path.join(self.dir, f'{name}_{mode}.json')) as f:
                    report = json.load(f)
                self.assertEqual(report['output'], path)
                counted = sum(sum(m['convolutions'].values()) for m in report['methods'])
                self.assertEqual(counted, report['convolutions'])
                self.assertGreater(report['convolutions'], 0)
                self.assertGreaterEqual(report['host_regions'], 1)
                for method in report['methods']:
                    self.assertTrue(method['class'].startswith('__torch__'), method)
                    self.assertTrue(method['method'], method)

    def test_rewriting_twice_changes_nothing(self):
        first = self.rewritten['resnet18', 'scripted']
        second = os.path.join(self.dir, 'twice.pt')
        result = rewrite(first, second)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('nothing to rewrite', result.stdout)
        self.assertIn('copied unchanged, byte for byte', result.stdout)
        self.assertEqual(digest(second), digest(first))
        a, b = rdna1.load(first), rdna1.load(second)
        self.assertEqual(a.code, b.code)
        for name in ('layer1', 'layer4'):
            self.assertEqual(getattr(a, name).code, getattr(b, name).code)

    def test_summary_counts_layers(self):
        # resnet18: 20 convolutions and 20 batch norms as layers, in 11 + 1 code sites (scripted
        # BasicBlocks share one method graph per class).
        self.assertRegex(self.results['resnet18', 'scripted'].stdout,
                         r'^rewrote 20 convolution layers and 20 norm layers \(12 code sites in \d+ methods\)')
        self.assertRegex(self.results['resnet18', 'traced'].stdout, r'^rewrote 20 convolution layers and 20 norm layers')

    def test_report_to_standard_output(self):
        result = rewrite('--report=-', '--dry-run', sample('audio', 'scripted'))
        self.assertEqual(result.returncode, 0, result.stderr)
        report = json.loads(result.stdout)
        self.assertEqual(report['version'], 2)
        self.assertEqual(report['convolution_layers'], 2)
        self.assertRegex(result.stderr, r'^rewrote 2 convolution layers .*\(dry run, nothing written\)\n$')
        self.assertFalse(os.path.exists('-'))

    def test_input_shape_implies_verify(self):
        out = os.path.join(self.dir, 'verified.pt')
        result = rewrite('--input-shape=2x1x1600', sample('audio', 'scripted'), out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r'\nverified: max relative output error ')

    def test_nodes_that_still_reach_the_dnn_library(self):
        # The LSTM is rewritten (rdna1::lstm); grid sampling is not and still reaches cuDNN/MIOpen.
        class ConvLstmSampler(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv1d(4, 8, 3)
                self.lstm = torch.nn.LSTM(8, 8, batch_first=True)

            def forward(self, x, grid):
                y = self.lstm(self.conv(x).transpose(1, 2))[0]
                return torch.nn.functional.grid_sample(y.unsqueeze(1), grid, align_corners=False)

        path, out = os.path.join(self.dir, 'sampler.pt'), os.path.join(self.dir, 'sampler.rdna1.pt')
        torch.jit.script(ConvLstmSampler()).save(path)
        result = rewrite(path, out)
        self.assertEqual(result.returncode, 0, result.stderr)
        warnings = result.stderr.splitlines()
        self.assertEqual(len(warnings), 1, result.stderr)
        self.assertRegex(warnings[0], r'^rdna1-rewrite: warning: aten::grid_sampler in __torch__\.\S+ is not '
                                      r'rewritten and will still reach cuDNN/MIOpen on a GPU$')
        self.assertRegex(result.stdout, r'^rewrote 1 convolution layer and 1 recurrent layer ')
        self.assertTrue(os.path.exists(out))
        strict = rewrite('--strict', path, out + '2')
        self.assertEqual(strict.returncode, 3, strict.stderr)
        self.assertEqual(len(strict.stderr.strip().splitlines()), 1)
        self.assertIn('aten::grid_sampler', strict.stderr)
        self.assertIn('would still reach cuDNN/MIOpen (--strict)', strict.stderr)
        self.assertFalse(os.path.exists(out + '2'))

    def test_run_model_parses_shapes_strictly(self):
        for shape in ('1,1,8,8', '2x', 'x3', '2x0x4', '2xax4'):
            with self.subTest(shape=shape):
                result = run(RUN_MODEL, self.rewritten['audio', 'scripted'], shape)
                self.assertEqual(result.returncode, 1, result.stdout)
                self.assertIn(f"invalid shape '{shape}'", result.stderr)

    def test_scripted_resnet50_is_one_region(self):
        import torchvision
        model = torchvision.models.resnet50(num_classes=10).eval()
        path, out = os.path.join(self.dir, 'resnet50.pt'), os.path.join(self.dir, 'resnet50.rdna1.pt')
        torch.jit.script(model).save(path)
        result = rewrite(path, out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r', [12] host regions? -> ')
        rewritten = rdna1.load(out)
        # An eval copy would save no crossing: forward keeps one body.
        self.assertFalse(hasattr(rewritten, '_rdna1_eval_forward'))
        kinds = inlined_kinds(rewritten)
        self.assertLessEqual(kinds.count('rdna1::to_host'), 2)
        self.assertLessEqual(kinds.count('rdna1::to_device'), 2)
        self.assertEqual(kinds.count('rdna1::conv'), 53)
        self.assertEqual(aten_convolutions(inlined_kinds(rewritten)), [])
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(rewritten(x), model(x), rtol=1e-4, atol=1e-4)

    def test_per_op_regions_option(self):
        out = os.path.join(self.dir, 'per-op.pt')
        result = rewrite('--regions=per-op', sample('resnet18', 'traced'), out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn('host region', result.stdout)
        self.assertNotIn('rdna1::to_host', inlined_kinds(rdna1.load(out)))

    def test_removed_region_modes_are_refused(self):
        # max, conv and --train-regions left the tool; files written with them still load
        # (e2e_old_files).
        for args, message in ((['--regions=max'], "regions must be 'auto' or 'per-op', got 'max'"),
                              (['--regions=conv'], "regions must be 'auto' or 'per-op', got 'conv'"),
                              (['--train-regions=auto'], 'Unknown command line argument')):
            with self.subTest(args=args):
                result = rewrite(*args, sample('audio', 'scripted'), os.path.join(self.dir, 'x.pt'))
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertIn(message, result.stderr)

    def test_dry_run_writes_nothing(self):
        out = os.path.join(self.dir, 'dry.pt')
        result = rewrite('--dry-run', sample('unet', 'scripted'), out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('dry run, nothing written', result.stdout)
        self.assertFalse(os.path.exists(out))

    def test_verbose_lists_methods(self):
        result = rewrite('-v', '--dry-run', sample('audio', 'scripted'))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stderr, r'Conv1d\._conv_forward: aten::conv1d x1')

    def test_frozen_module(self):
        model, x = sample_models.build('unet')
        frozen = torch.jit.freeze(torch.jit.script(model))
        path, out = os.path.join(self.dir, 'frozen.pt'), os.path.join(self.dir, 'frozen.rdna1.pt')
        frozen.save(path)
        result = rewrite(path, out)
        self.assertEqual(result.returncode, 0, result.stderr)
        rewritten = rdna1.load(out)
        self.assertEqual(aten_convolutions(inlined_kinds(rewritten)), [])
        with torch.no_grad():
            torch.testing.assert_close(rewritten(x), frozen(x), rtol=1e-4, atol=1e-4)

    def test_extra_files_are_kept(self):
        model, _ = sample_models.build('audio')
        path, out = os.path.join(self.dir, 'extra.pt'), os.path.join(self.dir, 'extra.rdna1.pt')
        torch.jit.save(torch.jit.script(model), path, _extra_files={'meta.json': '{"k": 1}'})
        self.assertEqual(rewrite(path, out).returncode, 0)
        extra = {'meta.json': ''}
        rdna1.load_runtime()
        torch.jit.load(out, _extra_files=extra)
        self.assertEqual(extra['meta.json'], b'{"k": 1}')

    def test_cpp_program_runs_rewritten_model(self):
        before = digest(sample('resnet18', 'traced'))
        result = run(RUN_MODEL, self.rewritten['resnet18', 'traced'], '2x3x64x64',
                     '--compare', sample('resnet18', 'traced'))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('output shape [2, 10]', result.stdout)
        difference = float(re.search(r'max \|original - rewritten\| = (\S+)', result.stdout).group(1))
        self.assertLess(difference, 1e-4)
        self.assertEqual(digest(sample('resnet18', 'traced')), before)


if __name__ == '__main__':
    unittest.main()
