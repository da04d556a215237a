#!/usr/bin/python3
"""Recurrent layers in rewritten TorchScript models: aten::lstm, gru, rnn_tanh and rnn_relu become
rdna1:: ops that run ATen's native cells (never cuDNN/MIOpen) where the backend says. Scripted
LSTMs, GRUs and plain RNNs (bidirectional, multi-layer, batch_first both ways, projections,
initial states, packed sequences) rewritten on the host and device backends give the original's
outputs and every gradient; dropout in training draws the original's masks; a CRNN of a real
text-line shape rewrites with no warning; a second rewrite changes nothing. Run plain and on the
stand-in device, where the host backend's crossings are real copies."""
import json
import os
import tempfile
import unittest

import torch
import torch.nn as nn

import rdna1
from e2e_support import digest, inlined_kinds, output_tensors, rewrite
from recurrent_modules import LstmWithState, Packed, PackedLstmWithState, Padded, SingleStateWithState

ATEN_RNNS = {'aten::lstm', 'aten::gru', 'aten::rnn_tanh', 'aten::rnn_relu'}
RDNA1_RNNS = {'rdna1::lstm', 'rdna1::gru', 'rdna1::rnn_tanh', 'rdna1::rnn_relu'}
# float64 everywhere numbers are compared exactly: the native stack and ATen's own add the gate
# biases and the input/hidden products in different orders, which float32 shows as ~1e-7 noise.
EXACT = 1e-10


def stand_in_device():
    return 'stand-in device on' in rdna1.runtime_info()


def outputs_and_grads(module, inputs):
    """The outputs and the gradients of every floating input and parameter, for a fixed random
    upstream gradient."""
    inputs = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    for p in module.parameters():
        p.grad = None
    outs = output_tensors(module(*inputs))
    total = sum((o * torch.randn(o.shape, generator=torch.Generator().manual_seed(i), dtype=o.dtype)).sum()
                for i, o in enumerate(outs))
    total.backward()
    grads = [t.grad for t in inputs if t.is_floating_point()] + [p.grad for p in module.parameters()]
    return [o.detach() for o in outs], grads


def all_nodes(block):
    for node in block.nodes():
        yield node
        for inner in node.blocks():
            yield from all_nodes(inner)


class Crnn(nn.Module):
    """A text-line recognizer: 1x32x128 images, four conv blocks down to one row of 32 columns, a
    bidirectional 2-layer LSTM over the columns, per-column class scores (CTC style)."""

    def __init__(self, classes=37):
        super().__init__()

        def block(cin, cout, pool):
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(pool)]
        self.features = nn.Sequential(*block(1, 32, 2), *block(32, 64, 2), *block(64, 128, (2, 1)),
                                      *block(128, 128, (4, 1)))
        self.rnn = nn.LSTM(128, 64, num_layers=2, bidirectional=True)
        self.head = nn.Linear(128, classes)

    def forward(self, x):
        f = self.features(x).squeeze(2).permute(2, 0, 1)  # [columns, batch, channels]
        out, _ = self.rnn(f)
        return self.head(out).log_softmax(-1)


LAYERS = [
    ('lstm bidirectional 2 layers', lambda: nn.LSTM(5, 7, num_layers=2, bidirectional=True)),
    ('lstm bidirectional 2 layers batch_first', lambda: nn.LSTM(5, 7, num_layers=2, bidirectional=True,
                                                                batch_first=True)),
    ('lstm projections batch_first', lambda: nn.LSTM(5, 6, num_layers=2, proj_size=3, batch_first=True)),
    ('gru bidirectional 3 layers batch_first', lambda: nn.GRU(5, 6, num_layers=3, bidirectional=True,
                                                              batch_first=True)),
    ('gru 2 layers', lambda: nn.GRU(5, 6, num_layers=2)),
    ('rnn tanh bidirectional 2 layers', lambda: nn.RNN(5, 6, num_layers=2, bidirectional=True)),
    ('rnn relu batch_first no bias', lambda: nn.RNN(5, 6, nonlinearity='relu', batch_first=True, bias=False)),
]


def initial_states(layer, batch):
    directions = 2 if layer.bidirectional else 1
    out_size = layer.proj_size if getattr(layer, 'proj_size', 0) else layer.hidden_size
    h0 = torch.randn(layer.num_layers * directions, batch, out_size, dtype=torch.float64)
    if isinstance(layer, nn.LSTM):
        return [h0, torch.randn(layer.num_layers * directions, batch, layer.hidden_size, dtype=torch.float64)]
    return [h0]


def cases(layer):
    """(what, module, inputs) for the layer padded, with initial states, and packed."""
    batch, steps = 3, 6
    x = torch.randn(batch, steps, 5) if layer.batch_first else torch.randn(steps, batch, 5)
    x = x.double()
    lengths = torch.tensor([4, 6, 2])
    states = initial_states(layer, batch)
    with_state = LstmWithState(layer) if isinstance(layer, nn.LSTM) else SingleStateWithState(layer)
    yield 'padded', Padded(layer), [x]
    yield 'initial states', with_state, [x] + states
    yield 'packed', Packed(layer), [x, lengths]
    if isinstance(layer, nn.LSTM):
        yield 'packed with initial states', PackedLstmWithState(layer), [x, lengths] + states


class RecurrentTest(unittest.TestCase):
    def setUp(self):
        rdna1.load_runtime()
        self.dir = tempfile.mkdtemp()
        torch.manual_seed(0)

    def tearDown(self):
        rdna1.set_backend(None)

    def close(self, actual, expected, tolerance, what):
        self.assertEqual(len(actual), len(expected), what)
        for k, (a, e) in enumerate(zip(actual, expected)):
            self.assertIsNotNone(e, f'{what}: reference value {k} missing')
            self.assertIsNotNone(a, f'{what}: value {k} missing')
            self.assertEqual(a.shape, e.shape, f'{what}: value {k}')
            scale = max(1.0, e.abs().max().item()) if e.numel() else 1.0
            error = (a - e).abs().max().item() / scale if e.numel() else 0.0
            self.assertLessEqual(error, tolerance, f'{what}: value {k} relative error {error:.2e}')

    def rewritten(self, scripted, what):
        """The scripted module rewritten in process: no warning, no aten:: RNN left, rdna1:: ones."""
        result = rdna1.rewrite(scripted)
        self.assertEqual(result.warnings, [], what)
        self.assertGreater(result.report['recurrent'], 0, what)
        kinds = set(inlined_kinds(result.module))
        self.assertFalse(kinds & ATEN_RNNS, what)
        self.assertTrue(kinds & RDNA1_RNNS, what)
        return result.module

    def compare_on_backends(self, original, rewritten, inputs, what):
        expected = outputs_and_grads(original, inputs)
        for backend in ('host', 'device'):
            rdna1.set_backend(backend)
            rdna1.reset_counters()
            actual = outputs_and_grads(rewritten, inputs)
            self.close(actual[0], expected[0], EXACT, f'{what} on {backend}: outputs')
            self.close(actual[1], expected[1], EXACT, f'{what} on {backend}: gradients')
            if stand_in_device():  # the host backend really crossed; the device one moved nothing
                copies = rdna1.counters()['to_host_copies']
                self.assertEqual(copies > 0, backend == 'host', f'{what} on {backend}: {copies} copies')

    def test_layers_padded_with_states_and_packed_match_the_original(self):
        for name, make in LAYERS:
            layer = make().double()
            for form, module, inputs in cases(layer):
                what = f'{name}, {form}'
                with self.subTest(what):
                    original = torch.jit.script(module)
                    self.compare_on_backends(original, self.rewritten(original, what), inputs, what)

    def test_packed_layers_call_the_data_overloads_after_save_and_load(self):
        for layer in (nn.LSTM(5, 6), nn.GRU(5, 6), nn.RNN(5, 6, nonlinearity='relu')):
            rewritten = self.rewritten(torch.jit.script(Packed(layer.double())), str(layer))
            path = os.path.join(self.dir, 'packed.pt')
            rewritten.save(path)
            graph = rdna1.load(path).forward.graph.copy()
            torch._C._jit_pass_inline(graph)
            schemas = [node.schema() for node in all_nodes(graph.block())
                       if node.kind() in RDNA1_RNNS | ATEN_RNNS]
            self.assertTrue(schemas, str(layer))
            self.assertTrue(all(schema.startswith('rdna1::') for schema in schemas), schemas)
            self.assertTrue(any('.data(Tensor data, Tensor batch_sizes' in schema for schema in schemas), schemas)

    def test_dropout_in_training_draws_the_originals_masks(self):
        # On the CPU, ATen's own RNN stack applies at::dropout to each layer's output but the last,
        # as the native stack does, so one seed draws the same masks in both (on a GPU the original
        # would draw cuDNN's masks instead, and no comparison of values is possible).
        for layer in (nn.LSTM(4, 5, num_layers=3, dropout=0.5), nn.GRU(4, 5, num_layers=2, dropout=0.3,
                                                                       bidirectional=True)):
            layer = layer.double().train()
            x = torch.randn(5, 2, 4, dtype=torch.float64)
            original = torch.jit.script(Padded(layer))
            rewritten = self.rewritten(original, str(layer))
            torch.manual_seed(11)
            expected = outputs_and_grads(original, [x])
            for backend in ('host', 'device'):
                rdna1.set_backend(backend)
                torch.manual_seed(11)
                actual = outputs_and_grads(rewritten, [x])
                self.close(actual[0], expected[0], EXACT, f'{layer} on {backend}: outputs')
                self.close(actual[1], expected[1], EXACT, f'{layer} on {backend}: gradients')
                torch.manual_seed(12)
                other_seed = outputs_and_grads(rewritten, [x])[0][0]
                self.assertGreater((other_seed - actual[0][0]).abs().max().item(), 1e-3,
                                   'dropout drew the same masks for another seed')
            rewritten.eval()
            original.eval()
            self.close(outputs_and_grads(rewritten, [x])[0], outputs_and_grads(original, [x])[0], EXACT,
                       f'{layer} in eval mode')
            self.assertGreater((outputs_and_grads(rewritten, [x])[0][0] - expected[0][0]).abs().max().item(),
                               1e-3, 'dropout in training changed nothing')

    def test_crnn_rewrites_with_no_warning_and_matches(self):
        model = Crnn().eval()
        path, out = os.path.join(self.dir, 'crnn.pt'), os.path.join(self.dir, 'crnn.rdna1.pt')
        report_path = os.path.join(self.dir, 'crnn.json')
        torch.jit.script(model).save(path)
        result = rewrite('--report=' + report_path, path, out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn('warning', result.stderr)
        self.assertRegex(result.stdout, r'^rewrote 4 convolution layers and 4 norm layers and 1 recurrent layer ')
        with open(report_path) as f:
            report = json.load(f)
        self.assertEqual((report['convolution_layers'], report['norm_layers'], report['recurrent_layers']),
                         (4, 4, 1))
        self.assertEqual([u for m in report['methods'] for u in m['remaining_dnn_users']], [])

        original, rewritten = torch.jit.load(path), rdna1.load(out)
        kinds = inlined_kinds(rewritten)
        self.assertNotIn('aten::lstm', kinds)
        self.assertIn('rdna1::lstm', kinds)
        x = torch.randn(2, 1, 32, 128)
        with torch.no_grad():
            expected = original(x)
            self.assertEqual(tuple(expected.shape), (32, 2, 37))
            for backend in ('host', 'device'):
                rdna1.set_backend(backend)
                # float32 convolutions: oneDNN on the host path may sum in another order than ATen's.
                self.close([rewritten(x)], [expected], 1e-4, f'CRNN on {backend}')

        # Training mode in float64: every gradient, batch norm statistics updated alike.
        original.double().train()
        rewritten.double().train()
        for backend in ('host', 'device'):
            rdna1.set_backend(backend)
            expected = outputs_and_grads(original, [x.double()])
            actual = outputs_and_grads(rewritten, [x.double()])
            self.close(actual[0], expected[0], 1e-9, f'CRNN training on {backend}: outputs')
            self.close(actual[1], expected[1], 1e-9, f'CRNN training on {backend}: gradients')
        self.close(list(rewritten.buffers()), list(original.buffers()), 1e-9, 'CRNN batch norm statistics')

        twice = os.path.join(self.dir, 'crnn.twice.pt')
        again = rewrite(out, twice)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn('copied unchanged, byte for byte', again.stdout)
        self.assertEqual(digest(twice), digest(out))


if __name__ == '__main__':
    unittest.main()
