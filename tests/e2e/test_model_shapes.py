#!/usr/bin/python3
"""The CLI on the model shapes real files contain: convolutions in branches, loops, exported methods,
shared submodules, run-time weights, buffers, frozen constants, in-place ops, padding modes, string
padding, explicit backward nodes; and the rewritten models on zero-size batches, channels-last
inputs, every float dtype and double backward. Outputs and every gradient match the original."""
import os
import shutil
import tempfile
import unittest

import torch

import rdna1
import shape_models
from e2e_support import aten_convolutions, inlined_kinds, output_tensors, rewrite

# Gradients of a gradient penalty through host convolutions: 1e-4 on the CPU path; on the stand-in
# device (RDNA1_STAND_IN_DEVICE=1) the host convolutions see channels-last copies, as on a GPU,
# and their other summation order shows at 2e-4 in these second-order values.
SECOND_ORDER_TOLERANCE = 1e-3 if os.environ.get('RDNA1_STAND_IN_DEVICE', '') not in ('', '0') else 1e-4
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5, torch.bfloat16: 3e-2, torch.float16: 1e-2}
DTYPE_MODELS = {
    torch.float64: ('padding_modes', 'shared_submodule', 'run_time_weights', 'in_place_after_conv'),
    torch.bfloat16: ('shared_submodule', 'run_time_weights', 'in_place_after_conv', 'same_valid_padding'),
    torch.float16: ('same_valid_padding', 'buffer_weights'),
}


def outputs_and_grads(module, inputs, method='forward'):
    """Outputs, input gradients and parameter gradients of a seeded random-weighted output sum."""
    inputs = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    for p in module.parameters():
        p.grad = None
    outputs = output_tensors(getattr(module, method)(*inputs))
    generator = torch.Generator().manual_seed(1)
    loss = sum((y.float() * torch.randn(y.shape, generator=generator)).sum() for y in outputs if y.requires_grad)
    if isinstance(loss, torch.Tensor):
        loss.backward()
    grads = [x.grad for x in inputs] + [p.grad for p in module.parameters()]
    return [y.detach() for y in outputs], grads


class ModelShapesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        cls.cache = {}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def saved(self, name, mode):
        """(original path, rewritten path) of model `name` saved 'scripted', 'traced' or 'frozen'."""
        key = (name, mode)
        if key not in self.cache:
            model, inputs = shape_models.build(name)
            if mode == 'traced':
                module = torch.jit.trace(model, tuple(inputs))
            else:
                module = torch.jit.script(model)
                if mode == 'frozen':
                    module = torch.jit.freeze(module)
            path = os.path.join(self.dir, f'{name}_{mode}.pt')
            out = os.path.join(self.dir, f'{name}_{mode}.rdna1.pt')
            module.save(path)
            result = rewrite(path, out)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertRegex(result.stdout, r'^rewrote [1-9]')
            self.cache[key] = path, out
        return self.cache[key]

    def assertMatches(self, actual, expected, tolerance):
        self.assertEqual(len(actual), len(expected))
        for got, want in zip(actual, expected):
            if want is None:
                self.assertIsNone(got)
                continue
            self.assertEqual(got.shape, want.shape)
            self.assertEqual(got.dtype, want.dtype)
            torch.testing.assert_close(got, want, rtol=tolerance, atol=tolerance)

    def assertSameOutputsAndGrads(self, original, rewritten, inputs, method='forward', tolerance=1e-5):
        expected = outputs_and_grads(original, inputs, method)
        actual = outputs_and_grads(rewritten, inputs, method)
        self.assertMatches(actual[0], expected[0], tolerance)
        self.assertMatches(actual[1], expected[1], tolerance)

    def cases(self):
        for name, (_, _, traceable) in shape_models.MODELS.items():
            for mode in ('scripted', 'traced') if traceable else ('scripted',):
                yield name, mode

    def test_no_convolution_left_in_any_method(self):
        for name, mode in self.cases():
            with self.subTest(model=name, mode=mode):
                path, out = self.saved(name, mode)
                original, rewritten = torch.jit.load(path), rdna1.load(out)
                for method in ['forward'] + [m for m in ('encode', 'decode') if hasattr(original, m)]:
                    self.assertTrue(aten_convolutions(inlined_kinds(original, method)), method)
                    kinds = inlined_kinds(rewritten, method)
                    self.assertEqual(aten_convolutions(kinds), [], method)
                    self.assertTrue({'rdna1::conv', 'rdna1::conv_backward'} & set(kinds), method)

    def test_outputs_and_gradients_match(self):
        for name, mode in self.cases():
            with self.subTest(model=name, mode=mode):
                path, out = self.saved(name, mode)
                _, inputs = shape_models.build(name)
                self.assertSameOutputsAndGrads(torch.jit.load(path), rdna1.load(out), inputs)

    def test_both_branches_of_an_if(self):
        path, out = self.saved('conv_in_if', 'scripted')
        original, rewritten = torch.jit.load(path), rdna1.load(out)
        x = shape_models.build('conv_in_if')[1][0]
        for sign in (1.0, -1.0):
            with self.subTest(sign=sign):
                self.assertSameOutputsAndGrads(original, rewritten, [x.abs() * sign])

    def test_exported_methods(self):
        path, out = self.saved('exported_methods', 'scripted')
        original, rewritten = torch.jit.load(path), rdna1.load(out)
        x = shape_models.build('exported_methods')[1][0]
        self.assertSameOutputsAndGrads(original, rewritten, [x], method='encode')
        self.assertSameOutputsAndGrads(original, rewritten, [original.encode(x).detach()], method='decode')

    def test_explicit_backward_becomes_a_host_backward(self):
        _, out = self.saved('explicit_convolution_backward', 'scripted')
        kinds = inlined_kinds(rdna1.load(out))
        self.assertIn('rdna1::conv_backward', kinds)
        self.assertNotIn('aten::convolution_backward', kinds)

    def test_frozen_constants(self):
        for name in ('shared_submodule', 'buffer_weights', 'padding_modes', 'run_time_weights'):
            with self.subTest(model=name):
                path, out = self.saved(name, 'frozen')
                original, rewritten = torch.jit.load(path), rdna1.load(out)
                self.assertEqual(aten_convolutions(inlined_kinds(rewritten)), [])
                self.assertSameOutputsAndGrads(original, rewritten, shape_models.build(name)[1])

    def test_zero_size_batch(self):
        for name, mode in self.cases():
            if name == 'explicit_convolution_backward':
                continue
            with self.subTest(model=name, mode=mode):
                path, out = self.saved(name, mode)
                inputs = [x[:0] for x in shape_models.build(name)[1]]
                self.assertSameOutputsAndGrads(torch.jit.load(path), rdna1.load(out), inputs)

    def test_channels_last_inputs(self):
        for name, mode in self.cases():
            with self.subTest(model=name, mode=mode):
                path, out = self.saved(name, mode)
                inputs = [x.contiguous(memory_format=torch.channels_last) for x in shape_models.build(name)[1]]
                self.assertSameOutputsAndGrads(torch.jit.load(path), rdna1.load(out), inputs)

    def test_every_float_dtype(self):
        # float64 is compared with the original in float64. For bfloat16 and float16 the reference is
        # the original with the same rounded weights and inputs, computed in float32: CPU ATen in this
        # torch lacks float16 for most ops and has a bfloat16 transposed-convolution bug. The models
        # are those whose other ops this CPU supports in the dtype.
        for dtype, names in DTYPE_MODELS.items():
            for name in names:
                with self.subTest(model=name, dtype=dtype):
                    path, out = self.saved(name, 'scripted')
                    reference_dtype = torch.float64 if dtype == torch.float64 else torch.float32
                    original = torch.jit.load(path).to(dtype).to(reference_dtype)
                    rewritten = rdna1.load(out).to(dtype)
                    inputs = [x.to(dtype) for x in shape_models.build(name)[1]]
                    expected = outputs_and_grads(original, [x.to(reference_dtype) for x in inputs])
                    actual = outputs_and_grads(rewritten, inputs)
                    for got, want in zip(actual[0] + actual[1], expected[0] + expected[1]):
                        self.assertEqual(got.dtype, dtype)
                        scale = max(1.0, want.abs().max().item()) if want.numel() else 1.0
                        torch.testing.assert_close(got.to(reference_dtype), want, rtol=TOLERANCE[dtype],
                                                   atol=TOLERANCE[dtype] * scale)

    def test_gradient_penalty_double_backward(self):
        for name in ('padding_modes', 'run_time_weights', 'exported_methods'):
            with self.subTest(model=name):
                path, out = self.saved(name, 'scripted')
                x = shape_models.build(name)[1][0]
                grads = []
                for module in (torch.jit.load(path), rdna1.load(out)):
                    x_ = x.clone().requires_grad_(True)
                    (g,) = torch.autograd.grad(module(x_).pow(2).sum(), x_, create_graph=True)
                    penalty = g.pow(2).sum()
                    grads.append(torch.autograd.grad(penalty, list(module.parameters())))
                self.assertMatches(list(grads[1]), list(grads[0]), SECOND_ORDER_TOLERANCE)


if __name__ == '__main__':
    unittest.main()
