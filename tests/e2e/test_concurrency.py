#!/usr/bin/python3
"""One loaded rewritten module used by several threads at once gives the single-threaded results."""
import os
import shutil
import tempfile
import threading
import unittest

import torch

import rdna1
import sample_models
from e2e_support import rewrite, sample

THREADS, ROUNDS = 4, 3


class ConcurrencyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.path = os.path.join(cls.dir, 'resnet18.rdna1.pt')
        assert rewrite(sample('resnet18', 'traced'), cls.path).returncode == 0

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_threads(self, work):
        errors = []

        def guarded(i):
            try:
                work(i)
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
        threads = [threading.Thread(target=guarded, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def inputs(self):
        shape = sample_models.SAMPLES['resnet18'][1]
        return [torch.randn(shape, generator=torch.Generator().manual_seed(i)) for i in range(THREADS)]

    def test_concurrent_forwards_match_single_threaded(self):
        model = rdna1.load(self.path)
        xs = self.inputs()
        with torch.no_grad():
            expected = [model(x) for x in xs]
        results = [[None] * ROUNDS for _ in range(THREADS)]

        def work(i):
            with torch.no_grad():
                for r in range(ROUNDS):
                    results[i][r] = model(xs[i])
        self.run_threads(work)
        for i in range(THREADS):
            for r in range(ROUNDS):
                torch.testing.assert_close(results[i][r], expected[i], rtol=0, atol=0)

    def test_concurrent_forward_backward_match_single_threaded(self):
        model = rdna1.load(self.path)
        xs = self.inputs()

        def input_grad(x):
            x = x.clone().requires_grad_(True)
            (model(x) ** 2).sum().backward(inputs=[x])
            return x.grad
        expected = [input_grad(x) for x in xs]
        results = [None] * THREADS

        def work(i):
            for _ in range(ROUNDS):
                results[i] = input_grad(xs[i])
        self.run_threads(work)
        for i in range(THREADS):
            torch.testing.assert_close(results[i], expected[i], rtol=0, atol=0)


if __name__ == '__main__':
    unittest.main()
