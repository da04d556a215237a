#!/usr/bin/python3
"""Eager mode (rdna1.enable(), docs/eager.md) on a machine without a GPU: the same kernels that
enable() registers for GPU tensors, registered for CPU tensors (the hidden `_on_cpu`), against
ATen's own kernels (taken with the mode off): forward and every gradient over a seeded sweep of
convolutions on the device and host backends, no_grad, inference mode, autocast, channels-last,
double backward, threads; batch/instance/group norm state after training steps; LSTM, GRU and
plain RNNs (bidirectional, multi-layer, projections, packed sequences, dropout); the dispatcher's
tables restored exactly by disable()."""
import random
import threading
import unittest

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

import rdna1
from recurrent_modules import LstmWithState, Packed, SingleStateWithState

# Every operator enable() registers for; their dispatcher tables are compared before and after.
EAGER_OPS = ['aten::convolution', 'aten::_convolution', 'aten::_convolution.deprecated',
             'aten::batch_norm', 'aten::lstm.input', 'aten::lstm.data', 'aten::gru.input',
             'aten::gru.data', 'aten::rnn_tanh.input', 'aten::rnn_tanh.data',
             'aten::rnn_relu.input', 'aten::rnn_relu.data']
# Lengths of a packed batch of three sequences, unsorted (Packed sorts them).
LENGTHS = torch.tensor([4, 6, 2])
# Convolution ops of ATen that only its own kernels run (the CPU's stand-ins for cuDNN/MIOpen).
ATEN_CONVOLUTION_KERNELS = ('aten::_convolution', 'aten::convolution_backward', 'aten::mkldnn_convolution',
                            'aten::_slow_conv2d', 'aten::slow_conv', 'aten::thnn_conv', 'aten::_nnpack')


def dispatch_tables():
    return {op: torch._C._dispatch_dump(op) for op in EAGER_OPS}


def close(test, actual, expected, tolerance, what):
    test.assertEqual(actual is None, expected is None, what)
    if expected is None:
        return
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    error = (actual - expected).abs().max().item() / scale if expected.numel() else 0.0
    test.assertLessEqual(error, tolerance, f'{what}: relative error {error:.2e}')


def random_convolution(rng):
    """A convolution layer, an input for it, and a description, from a seeded generator."""
    dims = rng.choice([1, 2, 2, 3])
    transposed = rng.random() < 0.35
    groups = rng.choice([1, 1, 2, 3])
    in_channels = groups * rng.randint(1, 3)
    out_channels = groups * rng.randint(1, 3)
    kernel = tuple(rng.randint(1, 3) for _ in range(dims))
    stride = tuple(rng.randint(1, 2) for _ in range(dims))
    dilation = tuple(rng.randint(1, 2) for _ in range(dims))
    padding = tuple(rng.randint(0, 2) for _ in range(dims))
    bias = rng.random() < 0.7
    extent = 5 if dims == 3 else 8
    if transposed:
        output_padding = tuple(rng.randint(0, max(s, d) - 1) for s, d in zip(stride, dilation))
        layer = [nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d][dims - 1](
            in_channels, out_channels, kernel, stride, padding, output_padding, groups, bias, dilation)
    else:
        layer = [nn.Conv1d, nn.Conv2d, nn.Conv3d][dims - 1](
            in_channels, out_channels, kernel, stride, padding, dilation, groups, bias)
    x = torch.randn(rng.randint(1, 2), in_channels, *([extent] * dims))
    return layer, x, f'{layer} on {tuple(x.shape)}'


def forward_and_grads(module, *inputs):
    """Output and the gradients of every input and parameter for a fixed random upstream gradient."""
    inputs = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    for p in module.parameters():
        p.grad = None
    out = module(*inputs)
    outs = [out] if isinstance(out, torch.Tensor) else [o for o in torch.utils._pytree.tree_flatten(out)[0]
                                                       if isinstance(o, torch.Tensor)]
    total = sum((o.float() * torch.randn(o.shape, generator=torch.Generator().manual_seed(i))).sum()
                for i, o in enumerate(outs) if o.requires_grad)
    total.backward()
    grads = [t.grad for t in inputs if t.is_floating_point()] + [p.grad for p in module.parameters()]
    return [o.detach() for o in outs], grads


class EagerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rdna1.load_runtime()
        cls.original_tables = dispatch_tables()

    def tearDown(self):
        rdna1.disable()
        rdna1.set_backend(None)
        rdna1.set_stand_in_device(False)
        self.assertEqual(dispatch_tables(), self.original_tables, 'disable() left the dispatcher changed')

    def compare(self, module, inputs, backend, tolerance=2e-5, what=''):
        """module(*inputs) with the mode on (backend on CPU tensors) against ATen's."""
        expected_outs, expected_grads = forward_and_grads(module, *inputs)
        with rdna1.enabled(backend, _on_cpu=True):
            outs, grads = forward_and_grads(module, *inputs)
        for k, (a, e) in enumerate(zip(outs, expected_outs)):
            close(self, a, e, tolerance, f'{what} output {k}')
        for k, (a, e) in enumerate(zip(grads, expected_grads)):
            close(self, a, e, tolerance, f'{what} gradient {k}')

    def test_convolution_sweep_on_device_and_host_backends(self):
        rng = random.Random(2026)
        for backend, count, stand_in in (('device', 60, False), ('host', 25, True)):
            rdna1.set_stand_in_device(stand_in)
            for _ in range(count):
                torch.manual_seed(rng.randint(0, 1 << 30))
                layer, x, what = random_convolution(rng)
                rdna1.reset_counters()
                self.compare(layer, [x], backend, what=f'{backend}: {what}')
                counters = rdna1.counters()
                ran = counters['native_convolutions'] if backend == 'device' else counters['host_convolutions']
                self.assertGreater(ran, 0, f'{what}: the runtime did not run it')

    def test_no_aten_convolution_kernel_runs_forward_or_backward(self):
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.Conv2d(8, 8, 3, groups=4, stride=2), nn.ConvTranspose2d(8, 4, 2, 2))
        x = torch.randn(2, 3, 12, 12, requires_grad=True)
        with rdna1.enabled('device', _on_cpu=True):
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                model(x).sum().backward()
        names = {event.name for event in prof.events()}
        self.assertIn('rdna1::conv', names)
        self.assertIn('rdna1::batch_norm', names)
        reached = sorted(n for n in names if n.startswith(ATEN_CONVOLUTION_KERNELS))
        self.assertEqual(reached, [], "ATen's own convolution kernels ran")
        self.assertNotIn('aten::_batch_norm_impl_index', names)

    def test_direct_convolution_calls_and_both_underscore_overloads(self):
        x, w, b = torch.randn(2, 4, 7, 7), torch.randn(6, 2, 3, 3), torch.randn(6)
        calls = {
            'convolution': lambda x, w, b: torch.convolution(x, w, b, [2, 1], [1, 0], [1, 2], False, [0, 0], 2),
            '_convolution': lambda x, w, b: torch._convolution(x, w, b, [2, 1], [1, 0], [1, 2], False, [0, 0], 2,
                                                               False, False, True, True),
            '_convolution.deprecated': lambda x, w, b: torch._convolution(
                x, w, b, [2, 1], [1, 0], [1, 2], False, [0, 0], 2, False, False, True),
        }
        for name, call in calls.items():
            module = Call(call, w, b)
            rdna1.reset_counters()
            self.compare(module, [x], 'device', what=name)
            self.assertEqual(rdna1.counters()['native_convolutions'], 1, name)

    def test_vendor_runs_atens_own_convolution_with_its_gradients(self):
        layer = nn.Conv2d(4, 6, 3, stride=2, groups=2)
        x = torch.randn(2, 4, 9, 9)
        rdna1.reset_counters()
        self.compare(layer, [x], 'vendor', tolerance=0.0, what='vendor')
        counters = rdna1.counters()
        self.assertEqual(counters['native_convolutions'] + counters['host_convolutions'], 0)

    def test_no_grad_inference_mode_and_channels_last(self):
        layer = nn.Conv2d(8, 16, 3, padding=1)
        x = torch.randn(2, 8, 10, 10)
        expected = layer(x).detach()
        for backend in ('device', 'host'):
            with rdna1.enabled(backend, _on_cpu=True):
                rdna1.reset_counters()
                with torch.no_grad():
                    close(self, layer(x), expected, 2e-5, f'{backend} no_grad')
                with torch.inference_mode():  # below autograd: the backend key's kernel
                    close(self, layer(x), expected, 2e-5, f'{backend} inference_mode')
                counters = rdna1.counters()
                self.assertEqual(counters['native_convolutions'] + counters['host_convolutions'], 2)
        last = layer.to(memory_format=torch.channels_last)
        x_last = x.to(memory_format=torch.channels_last)
        expected_out, expected_grads = forward_and_grads(last, x_last)
        with rdna1.enabled('device', _on_cpu=True):
            outs, grads = forward_and_grads(last, x_last)
        self.assertTrue(outs[0].is_contiguous(memory_format=torch.channels_last))
        close(self, outs[0], expected_out[0], 2e-5, 'channels-last output')
        for a, e in zip(grads, expected_grads):
            close(self, a, e, 2e-5, 'channels-last gradient')

    def test_autocast_bfloat16(self):
        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))
        x = torch.randn(2, 3, 10, 10)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            expected = model(x).float()
        with rdna1.enabled('device', _on_cpu=True), torch.autocast('cpu', dtype=torch.bfloat16):
            actual = model(x)
        self.assertEqual(actual.dtype, torch.bfloat16)
        close(self, actual.float(), expected, 3e-2, 'autocast bfloat16')

    def test_double_backward(self):
        x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
        w = torch.randn(4, 1, 3, 3, dtype=torch.float64, requires_grad=True)
        for backend in ('device', 'host', 'vendor'):
            with rdna1.enabled(backend, _on_cpu=True):
                self.assertTrue(torch.autograd.gradgradcheck(
                    lambda x, w: F.conv2d(x, w, stride=2, groups=2), (x, w)), backend)

    def test_activation_checkpointing_recomputes_the_runtimes_convolutions(self):
        # docs/backends.md points users short of memory here: a checkpointed block gives ATen's
        # output and gradients, and its convolutions run in the runtime on the recompute too.
        torch.manual_seed(5)
        block = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8).eval(), nn.ReLU(),
                              nn.Conv2d(8, 4, 3, padding=2, dilation=2, bias=False))
        x = torch.randn(2, 3, 10, 10)
        expected_outs, expected_grads = forward_and_grads(block, x)
        for reentrant in (False, True):
            with rdna1.enabled('device', _on_cpu=True):
                rdna1.reset_counters()
                outs, grads = forward_and_grads(Checkpointed(block, reentrant), x)
                ran = rdna1.counters()['native_convolutions']
            self.assertEqual(ran, 4, f'use_reentrant={reentrant}: two convolutions, each run twice')
            for k, (a, e) in enumerate(zip(outs + grads, expected_outs + expected_grads)):
                close(self, a, e, 2e-5, f'use_reentrant={reentrant}: tensor {k}')

    def test_threads_share_the_kernels(self):
        layer = nn.Conv2d(4, 4, 3, padding=1)
        inputs = [torch.randn(2, 4, 8, 8) for _ in range(4)]
        expected = [forward_and_grads(layer, x)[0][0] for x in inputs]
        results, errors = {}, []

        def work(k):
            try:
                for _ in range(5):
                    results[k] = layer(inputs[k]).detach()
            except Exception as error:  # noqa: BLE001 (reported by the main thread)
                errors.append(error)
        with rdna1.enabled('device', _on_cpu=True):
            threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.assertEqual(errors, [])
        for k in range(4):
            close(self, results[k], expected[k], 2e-5, f'thread {k}')

    def test_enable_is_idempotent_and_disable_exact(self):
        original = dispatch_tables()
        rdna1.enable(_on_cpu=True)
        once = dispatch_tables()
        self.assertNotEqual(once, original)
        self.assertIn('Eager.cpp', once['aten::convolution'])
        for op in EAGER_OPS:
            self.assertRegex(once[op], r'AutogradCPU: registered at .*Eager\.cpp', op)
            self.assertRegex(once[op], r'\nCPU: registered at .*Eager\.cpp', op)
        rdna1.enable(_on_cpu=True)
        self.assertEqual(dispatch_tables(), once)
        self.assertTrue(rdna1.eager.is_enabled())
        rdna1.disable()
        self.assertEqual(dispatch_tables(), original)
        rdna1.disable()
        self.assertFalse(rdna1.eager.is_enabled())
        with rdna1.enabled('device', _on_cpu=True):
            with rdna1.enabled(_on_cpu=True):
                pass
            self.assertTrue(rdna1.eager.is_enabled(), 'an inner block disabled the outer one')
            self.assertEqual(rdna1.backend_for('cpu'), 'device')
        self.assertEqual(rdna1.backend_for('cpu'), 'host', 'disable() kept the backend enable() set')
        self.assertEqual(dispatch_tables(), original)

    def test_norm_state_after_training_steps(self):
        torch.manual_seed(3)
        model = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1), nn.InstanceNorm2d(8, affine=True, track_running_stats=True),
            nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.GroupNorm(2, 8),
            nn.Flatten(), nn.Linear(8 * 36, 3))
        inputs = [torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(k)) for k in range(3)]

        def train(m):
            optimizer = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
            losses = []
            for x in inputs:
                optimizer.zero_grad()
                loss = m(x).square().mean()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            return losses
        reference = _copy(model)
        expected_losses = train(reference)
        with rdna1.enabled('device', _on_cpu=True):
            losses = train(model)
        self.assertEqual(len(losses), 3)
        for a, e in zip(losses, expected_losses):
            self.assertAlmostEqual(a, e, delta=1e-4 * max(1, abs(e)))
        expected_state = reference.state_dict()
        for name, value in model.state_dict().items():
            if value.is_floating_point():
                close(self, value, expected_state[name], 1e-4, name)
            else:
                self.assertTrue(torch.equal(value, expected_state[name]), name)

    def test_recurrent_layers(self):
        cases = [
            ('lstm', nn.LSTM(5, 7, num_layers=2, bidirectional=True)),
            ('lstm projections batch_first', nn.LSTM(5, 7, num_layers=2, proj_size=3, batch_first=True)),
            ('lstm no bias', nn.LSTM(5, 4, bias=False, bidirectional=True)),
            ('gru', nn.GRU(5, 6, num_layers=3, bidirectional=True)),
            ('rnn tanh', nn.RNN(5, 6, num_layers=2, bidirectional=True)),
            ('rnn relu batch_first', nn.RNN(5, 6, nonlinearity='relu', batch_first=True)),
        ]
        for what, layer in cases:
            x = torch.randn(3, 6, 5) if layer.batch_first else torch.randn(6, 3, 5)
            self.compare(layer, [x], 'device', tolerance=1e-5, what=what)
            self.compare(Packed(layer), [x, LENGTHS], 'device', tolerance=1e-5, what=f'{what} packed')
            h0 = torch.randn(layer.num_layers * (2 if layer.bidirectional else 1), 3,
                             layer.proj_size if getattr(layer, 'proj_size', 0) else layer.hidden_size)
            if isinstance(layer, nn.LSTM):
                c0 = torch.randn(h0.shape[0], 3, layer.hidden_size)
                self.compare(LstmWithState(layer), [x, h0, c0], 'device', tolerance=1e-5, what=f'{what} h0 c0')
            else:
                self.compare(SingleStateWithState(layer), [x, h0], 'device', tolerance=1e-5, what=f'{what} h0')

    def test_recurrent_layers_follow_the_host_backend(self):
        # As in rewritten models: backend host moves an RNN's operands across the (stand-in) bus in
        # one batch and runs the layer stack there, forward and backward.
        rdna1.set_stand_in_device(True)
        for what, layer in (('lstm', nn.LSTM(5, 7, num_layers=2, bidirectional=True)),
                            ('gru', nn.GRU(5, 6))):
            rdna1.reset_counters()
            self.compare(layer, [torch.randn(6, 3, 5)], 'host', tolerance=1e-5, what=f'host {what}')
            self.compare(Packed(layer), [torch.randn(6, 3, 5), LENGTHS], 'host', tolerance=1e-5,
                         what=f'host {what} packed')
            self.assertGreater(rdna1.counters()['to_host_copies'], 0, f'{what}: nothing crossed')

    def test_recurrent_dropout_draws_atens_masks(self):
        for layer in (nn.LSTM(4, 5, num_layers=3, dropout=0.5), nn.GRU(4, 5, num_layers=2, dropout=0.3,
                                                                       bidirectional=True)):
            x = torch.randn(5, 2, 4)
            torch.manual_seed(11)
            expected = forward_and_grads(layer, x)
            torch.manual_seed(11)
            with rdna1.enabled('device', _on_cpu=True):
                actual = forward_and_grads(layer, x)
            for a, e in zip(actual[0] + actual[1], expected[0] + expected[1]):
                close(self, a, e, 1e-5, f'{layer} with dropout')

    @unittest.skipUnless(hasattr(torch, 'compile'), 'torch.compile needs torch 2')
    def test_compile_with_aot_eager_keeps_the_kernels(self):
        torch.manual_seed(5)
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.Conv2d(8, 4, 3, groups=2, stride=2))
        x = torch.randn(2, 3, 12, 12)
        expected_outs, expected_grads = forward_and_grads(model, x)
        with rdna1.enabled('device', _on_cpu=True):
            compiled = torch.compile(model, backend='aot_eager')
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                outs, grads = forward_and_grads(compiled, x)
        torch._dynamo.reset()
        names = {event.name for event in prof.events()}
        self.assertEqual(sorted(n for n in names if n.startswith(ATEN_CONVOLUTION_KERNELS)), [])
        close(self, outs[0], expected_outs[0], 2e-5, 'aot_eager output')
        for k, (a, e) in enumerate(zip(grads, expected_grads)):
            close(self, a, e, 2e-5, f'aot_eager gradient {k}')

    def test_crnn_training_step(self):
        model = TinyCrnn()
        self.compare(model, [torch.randn(2, 1, 16, 24)], 'device', tolerance=2e-5, what='CRNN')


class Call(nn.Module):
    def __init__(self, call, weight, bias):
        super().__init__()
        self.call = call
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)

    def forward(self, x):
        return self.call(x, self.weight, self.bias)


class Checkpointed(nn.Module):
    """block under torch.utils.checkpoint: its activations recomputed in the backward."""

    def __init__(self, block, reentrant):
        super().__init__()
        self.block = block
        self.reentrant = reentrant

    def forward(self, x):
        return torch.utils.checkpoint.checkpoint(self.block, x, use_reentrant=self.reentrant)


class TinyCrnn(nn.Module):
    """Convolutions over a text line image, then a bidirectional LSTM over its columns."""

    def __init__(self, classes=11):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                                      nn.MaxPool2d((2, 1)))
        self.rnn = nn.LSTM(16 * 4, 12, num_layers=2, bidirectional=True)
        self.head = nn.Linear(24, classes)

    def forward(self, x):
        f = self.features(x)                      # [N, C, H, W]
        f = f.flatten(1, 2).permute(2, 0, 1)      # [W, N, C*H]
        out, _ = self.rnn(f)
        return self.head(out).log_softmax(-1)


def _copy(module):
    import copy
    return copy.deepcopy(module)


if __name__ == '__main__':
    unittest.main()
