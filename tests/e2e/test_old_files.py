#!/usr/bin/python3
"""Files written by rdna1 0.2 keep loading and computing what their originals compute: their ops
stay registered (docs/operators.md), including the conv training copy's choice
(rdna1::train_with_conv_regions) and a baked-in backend. The files in tests/e2e/data were
written by the 0.2 tool from the samples beside them (data/README.md)."""
import copy
import os
import unittest

import torch

import rdna1

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')
FILES = (('unet-written-by-0.2.pt', 'unet-original.pt', (2, 3, 32, 32)),
         ('audio-per-op-host-written-by-0.2.pt', 'audio-original.pt', (2, 1, 1600)))


def step(model, x, optimizer):
    optimizer.zero_grad()
    y = model(x)
    y.square().mean().backward()
    optimizer.step()
    return y.detach()


class OldFilesTest(unittest.TestCase):
    def test_written_by_0_2_trains_and_infers_as_the_original(self):
        for written, original, shape in FILES:
            with self.subTest(file=written):
                old = rdna1.load(os.path.join(DATA, written))
                reference = torch.jit.load(os.path.join(DATA, original))
                generator = torch.Generator().manual_seed(0)
                optimizers = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for m in (old, reference)]
                for _ in range(3):
                    x = torch.randn(shape, generator=generator)
                    outputs = [step(m.train(), x, o) for m, o in zip((old, reference), optimizers)]
                    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)
                state, expected = old.state_dict(), reference.state_dict()
                self.assertEqual(sorted(state), sorted(expected))
                for key, want in expected.items():
                    torch.testing.assert_close(state[key], want, rtol=1e-4, atol=1e-5, msg=key)
                x = torch.randn(shape, generator=generator)
                with torch.no_grad():
                    torch.testing.assert_close(old.eval()(x), reference.eval()(x), rtol=1e-4, atol=1e-5)


if __name__ == '__main__':
    unittest.main()
