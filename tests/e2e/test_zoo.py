#!/usr/bin/python3
"""torchvision's model zoo through the CLI, scripted and traced: no convolution left, outputs and
every gradient match the original, the runtime runs as many convolutions as torch.profiler counts
in the original's forward, and --report lists every rewritten node by class, method and kind.

Models with batch norm, scripted, also run two forwards in training mode: the whole state_dict
(running statistics, num_batches_tracked) must then match the original's, which on the stand-in
device (RDNA1_STAND_IN_DEVICE=1) proves every statistic crosses back to the device.

ZOO_SHARD=K/N runs every N-th model but the giants, starting at K (ctest runs the shards side by
side); ZOO_SHARD=giants runs the models over 190M parameters; ZOO_SET=families limits either to
one model per architecture family (zoo_models.FAMILIES); ZOO_MODELS=a,b runs just those.
"""
import gc
import json
import os
import shutil
import sys
import tempfile
import time
import unittest
from collections import Counter

import torch

import rdna1
import zoo_models
from e2e_support import aten_convolutions, inlined_kinds, output_tensors, rewrite

# Relative to the largest magnitude of each compared tensor: the host convolutions are ATen's own,
# but regions run them on channels-last copies, which changes the summation order.
TOLERANCE = 1e-4


def is_convolution(kind):
    return kind.startswith('aten::') and 'conv' in kind and kind != 'aten::conv_tbc'


def selected_models():
    wanted = os.environ.get('ZOO_MODELS')
    if wanted:
        return wanted.split(',')
    pool = zoo_models.FAMILIES if os.environ.get('ZOO_SET') == 'families' else zoo_models.names()
    if os.environ.get('ZOO_SHARD') == 'giants':
        return [name for name in zoo_models.GIANTS if name in pool]
    shard, count = (int(n) for n in os.environ.get('ZOO_SHARD', '0/1').split('/'))
    return [name for name in pool if name not in zoo_models.GIANTS][shard::count]


def outputs_and_grads(module, x):
    """Outputs, then the input's and every parameter's gradient of a seeded random-weighted sum."""
    x = x.clone().requires_grad_(True)
    outputs = output_tensors(module(x))
    generator = torch.Generator().manual_seed(1)
    loss = sum((y * torch.randn(y.shape, generator=generator)).sum() for y in outputs)
    parameters = list(module.parameters())
    grads = torch.autograd.grad(loss, [x] + parameters, allow_unused=True)
    return [y.detach() for y in outputs] + list(grads)


def profiled_convolutions(module, x):
    """Convolution calls in one forward of `module` (eager or TorchScript), counted by torch.profiler as aten::_convolution
    events: every convolution spelling (conv2d, conv_transpose3d, convolution, 'same' padding, ...)
    dispatches through it exactly once. (Counting outermost 'conv' events instead is unreliable: the
    profiler does not always nest them.)"""
    with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        module(x)
    return sum(1 for event in profile.events() if event.name == 'aten::_convolution')


def train_mode_state(module, x, forwards=2):
    """The state_dict after `forwards` training-mode forwards (autograd on, seeded randomness) on a
    batch of two (batch norm in training mode needs more than one value per channel)."""
    module.train()
    torch.manual_seed(0)
    batch = torch.cat([x, x.flip(-1)])
    for _ in range(forwards):
        output_tensors(module(batch))
    return module.state_dict()


def has_batch_norm(model):
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def runtime_convolutions(module, x):
    rdna1.reset_counters()
    with torch.no_grad():
        module(x)
    return rdna1.counters()['host_convolutions']


def convolution_nodes_by_method(module):
    """{(class, method): {kind: count}} of the convolution nodes in each method's own graph."""
    found, seen = {}, set()

    def visit(submodule):
        owner = submodule._c._type().qualified_name()
        if owner not in seen:
            seen.add(owner)
            for method in submodule._c._method_names():
                kinds = Counter()

                def walk(block):
                    for node in block.nodes():
                        if is_convolution(node.kind()):
                            kinds[node.kind()] += 1
                        for inner in node.blocks():
                            walk(inner)
                walk(submodule._c._get_method(method).graph)
                if kinds:
                    found[owner, method] = dict(kinds)
        for child in submodule.children():
            visit(child)
    visit(module)
    return found


class ZooTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        rdna1.load_runtime()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def check_model(self, name):
        start = time.monotonic()
        model, x = zoo_models.build(name)
        # The eager model is the reference for both modes: scripting and tracing do not change it.
        calls = profiled_convolutions(model, x)
        self.assertGreater(calls, 0)
        expected = outputs_and_grads(model, x)
        for mode in ('scripted', 'traced'):
            with self.subTest(mode=mode):
                self.check_mode(name, mode, model, x, calls, expected)
            gc.collect()
        print(f'zoo: {name} {time.monotonic() - start:.1f}s', file=sys.stderr, flush=True)

    def check_mode(self, name, mode, model, x, calls, expected):
        path = os.path.join(self.dir, f'{name}_{mode}.pt')
        out = os.path.join(self.dir, f'{name}_{mode}.rdna1.pt')
        report_path = os.path.join(self.dir, f'{name}_{mode}.json')
        # Traced with autograd on: under no_grad, attention would take its inference-only fast path.
        module = torch.jit.script(model) if mode == 'scripted' else torch.jit.trace(model, x, strict=False,
                                                                                   check_trace=False)
        module.save(path)
        nodes = convolution_nodes_by_method(module)
        del module
        result = rewrite(f'--report={report_path}', path, out)
        self.assertEqual(result.returncode, 0, result.stderr)
        if mode == 'scripted' and has_batch_norm(model):
            self.check_training_state(name, path, out, x)
        rewritten = rdna1.load(out)
        os.remove(path)
        os.remove(out)

        kinds = inlined_kinds(rewritten)
        self.assertEqual(aten_convolutions(kinds), [])
        self.assertIn('rdna1::conv', kinds)

        with open(report_path) as f:
            report = json.load(f)
        reported = {(m['class'], m['method']): m['convolutions'] for m in report['methods'] if m['convolutions']}
        self.assertEqual(reported, nodes)
        self.assertEqual(report['convolutions'], sum(sum(k.values()) for k in nodes.values()))

        self.assertEqual(runtime_convolutions(rewritten, x), calls)

        actual = outputs_and_grads(rewritten, x)
        self.assertEqual(len(actual), len(expected))
        for index, (got, want) in enumerate(zip(actual, expected)):
            if want is None:
                self.assertIsNone(got, index)
                continue
            scale = max(1.0, want.abs().max().item()) if want.numel() else 1.0
            torch.testing.assert_close(got, want, rtol=TOLERANCE, atol=TOLERANCE * scale,
                                       msg=lambda m: f'{name} {mode} value {index}: {m}')


    def check_training_state(self, name, path, out, x):
        """After training-mode forwards, the rewritten model's running statistics moved as the
        original's did: over all of them, the distance between the two states is under a tenth
        of how far the original's moved from where both started (a statistic that never crossed
        back stays where it started: the whole distance), and num_batches_tracked is equal.
        Summed, not per tensor: batch statistics of tiny deep feature maps (inception_v3's last
        block is 1x1 here) amplify the host convolutions' other summation order, in float32 and
        float64 alike, far beyond any per-tensor tolerance."""
        original = torch.jit.load(path)
        initial = {key: value.clone() for key, value in original.state_dict().items()}
        expected = train_mode_state(original, x)
        actual = train_mode_state(rdna1.load(out), x)
        self.assertEqual(sorted(actual), sorted(expected))
        moved = difference = 0.0
        for key, want in expected.items():
            if not want.is_floating_point():
                self.assertTrue(torch.equal(actual[key], want), f'{name} {key}')
            elif key.endswith(('running_mean', 'running_var')):
                moved += (want - initial[key]).double().norm().item()
                difference += (actual[key] - want).double().norm().item()
            else:
                torch.testing.assert_close(actual[key], want, rtol=0, atol=0, msg=f'{name} {key} changed')
        self.assertGreater(moved, 0.0, f'{name}: the original\'s statistics did not move')
        self.assertLess(difference, 0.1 * moved,
                        f'{name}: training-mode statistics {difference:.3g} from the original\'s, which moved {moved:.3g}')


def _add_model_tests():
    for name in selected_models():
        setattr(ZooTest, f'test_{name}', lambda self, name=name: self.check_model(name))


_add_model_tests()

if __name__ == '__main__':
    unittest.main()
