#!/usr/bin/python3
"""rdna1.load: finds the runtime, and says clearly what is missing when it cannot."""
import os
import shutil
import tempfile
import unittest

import re

from e2e_support import PYTHON, SOURCE_DIR, rewrite, run, sample

# Runs in a fresh interpreter, so no runtime is registered yet.
LOAD = 'import rdna1, sys; m = rdna1.load(sys.argv[1]); print(type(m).__name__)'
PLAIN_LOAD = 'import torch, sys; torch.jit.load(sys.argv[1])'


class PythonLoadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.rewritten = os.path.join(cls.dir, 'audio.rdna1.pt')
        result = rewrite(sample('audio', 'scripted'), cls.rewritten)
        assert result.returncode == 0, result.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def env(self, **changes):
        env = dict(os.environ)
        env.update(changes)
        return env

    def test_loads_with_runtime(self):
        result = run(PYTHON, '-c', LOAD, self.rewritten)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('RecursiveScriptModule', result.stdout)

    def test_runtime_info_names_version_and_hip(self):
        result = run(PYTHON, '-c', 'import rdna1; print(rdna1.runtime_info())')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r'^rdna1 runtime \d+\.\d+\.\d+; HIP: ')

    def test_counters_and_cache_controls(self):
        code = ('import rdna1, torch; rdna1.reset_counters(); m = rdna1.load(sys.argv[1]); '
                'm(torch.randn(1, 1, 1600)); c = rdna1.counters(); rdna1.clear_param_cache(); '
                'print(c["host_convolutions"], c["to_host_copies"])')
        result = run(PYTHON, '-c', 'import sys; ' + code, self.rewritten)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.split(), ['2', '0'])  # two convolutions, nothing to move on the CPU

    def test_missing_runtime_names_ops_and_remedy(self):
        result = run(PYTHON, '-c', LOAD, self.rewritten,
                     env=self.env(RDNA1_RUNTIME=os.path.join(self.dir, 'nowhere.so')))
        self.assertNotEqual(result.returncode, 0)
        last = result.stderr.strip().splitlines()[-1]
        self.assertIn('RuntimeNotFoundError', last)
        self.assertIn('rdna1::conv', last)
        self.assertIn('RDNA1_RUNTIME', last)

    def test_model_without_rdna1_ops_needs_no_runtime(self):
        result = run(PYTHON, '-c', LOAD, sample('audio', 'scripted'),
                     env=self.env(RDNA1_RUNTIME=os.path.join(self.dir, 'nowhere.so')))
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_plain_torch_load_without_runtime_names_the_op(self):
        result = run(PYTHON, '-c', PLAIN_LOAD, self.rewritten, env=self.env(RDNA1_RUNTIME=os.path.join(self.dir, 'nowhere.so')))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn('rdna1::conv', result.stderr)

    def test_import_registers_the_operators(self):
        result = run(PYTHON, '-c', 'import rdna1; ' + PLAIN_LOAD + '; print("loaded")', self.rewritten)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), 'loaded')

    def test_version_matches_the_project(self):
        with open(os.path.join(SOURCE_DIR, 'CMakeLists.txt')) as f:
            version = re.search(r'project\(rdna1_rewrite VERSION ([0-9.]+)', f.read()).group(1)
        result = run(PYTHON, '-c', 'import rdna1; print(rdna1.__version__); print(rdna1.runtime_info())')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines()[0], version)
        self.assertTrue(result.stdout.splitlines()[1].startswith(f'rdna1 runtime {version};'))

    def test_load_takes_torch_jit_load_arguments(self):
        code = ('import io, sys, rdna1; extra = {"note.txt": ""}; '
                'm = rdna1.load(io.BytesIO(open(sys.argv[1], "rb").read()), map_location="cpu", _extra_files=extra); '
                'print(type(m).__name__, len(extra["note.txt"]))')
        result = run(PYTHON, '-c', code, self.rewritten)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), 'RecursiveScriptModule 0')

    def test_rewrite_a_module_in_memory(self):
        import rdna1
        import torch
        import sample_models
        model, x = sample_models.build('unet')
        scripted = torch.jit.script(model)
        result = rdna1.rewrite(scripted, regions='auto')
        self.assertRegex(result.summary, r'^rewrote 8 convolution layers and 6 norm layers \(')
        self.assertEqual(str(result), result.summary)
        self.assertEqual(result.report['version'], 2)
        self.assertEqual(result.report["convolution_layers"], 8)
        self.assertEqual(result.warnings, [])
        with torch.no_grad():
            torch.testing.assert_close(result.module(x), scripted(x), rtol=1e-4, atol=1e-4)
        dry = rdna1.rewrite(sample('audio', 'scripted'), dry_run=True)
        self.assertTrue(dry.summary.endswith('(dry run, nothing written)'), dry.summary)
        with self.assertRaisesRegex(ValueError, 'give an output path'):
            rdna1.rewrite(sample('audio', 'scripted'))
        with self.assertRaisesRegex(RuntimeError, "regions must be 'auto'"):
            rdna1.rewrite(sample('audio', 'scripted'), os.path.join(self.dir, 'x.pt'), regions='some')

    def test_cli_and_python_say_the_same(self):
        import rdna1
        out = os.path.join(self.dir, 'same.pt')
        cli = rewrite('--regions=per-op', sample('unet', 'traced'), out)
        os.remove(out)
        python = rdna1.rewrite(sample('unet', 'traced'), out, regions='per-op')
        self.assertEqual(cli.stdout.strip(), python.summary)
        module = run(PYTHON, '-m', 'rdna1', '--regions=per-op', sample('unet', 'traced'), out + '2')
        self.assertEqual(module.returncode, 0, module.stderr)
        self.assertEqual(module.stdout.strip(), python.summary.replace(out, out + '2'))

    def test_module_command_line_exits_with_the_tools_codes(self):
        # Each failure of `python3 -m rdna1` exits as rdna1-rewrite does for it, with one line.
        import torch
        class ConvSampler(torch.nn.Module):  # grid sampling still reaches cuDNN/MIOpen: --strict refuses it
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(2, 4, 3)

            def forward(self, x, grid):
                return torch.nn.functional.grid_sample(self.conv(x), grid, align_corners=False)

        sampler = os.path.join(self.dir, 'sampler.pt')
        torch.jit.script(ConvSampler()).save(sampler)
        out = os.path.join(self.dir, 'codes.pt')
        cases = (([sample('audio', 'scripted'), out, '--no-such-option'], 1),
                 ([os.path.join(self.dir, 'missing.pt'), out], 2),
                 (['--strict', sampler, out], 3),
                 ([sample('audio', 'scripted'), self.dir], 4))
        for args, code in cases:
            with self.subTest(args=args[-1], code=code):
                tool, module = rewrite(*args), run(PYTHON, '-m', 'rdna1', *args)
                self.assertEqual(tool.returncode, code, tool.stderr)
                self.assertEqual(module.returncode, code, module.stderr)
                if code != 1:  # usage errors: argparse's usage line, then one line
                    self.assertEqual(len(module.stderr.strip().splitlines()), 1, module.stderr)
                    self.assertEqual(module.stderr.split(': error: ', 1)[1], tool.stderr.split(': error: ', 1)[1])
        self.assertFalse(os.path.exists(out))


if __name__ == '__main__':
    unittest.main()
