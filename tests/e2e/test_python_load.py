#!/usr/bin/python3
"""rdna1.load: finds the runtime, and says clearly what is missing when it cannot."""
import os
import shutil
import tempfile
import unittest

from e2e_support import PYTHON, rewrite, run, sample

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
        result = run(PYTHON, '-c', PLAIN_LOAD, self.rewritten)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn('rdna1::conv', result.stderr)


if __name__ == '__main__':
    unittest.main()
