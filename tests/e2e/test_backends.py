#!/usr/bin/python3
"""Backends (runtime/include/rdna1/Backend.h) on the CPU machine: which one each source selects
(API, RDNA1_BACKEND, a model's baked-in default, auto), and the device and vendor backends run
forced on CPU tensors, with the stand-in device on: outputs and every gradient match the original,
no byte crosses the (stand-in) bus, and the counters say which kernels ran."""
import json
import os
import shutil
import tempfile
import unittest

import torch

import rdna1
import sample_models
from e2e_support import PYTHON, TOOL, inlined_kinds, outputs_and_grads, rewrite, run, sample


class BackendTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        rdna1.load_runtime()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def tearDown(self):
        rdna1.set_backend(None)
        rdna1.set_stand_in_device(False)

    def rewritten(self, name, mode, *options):
        tag = ''.join(o.strip('-').split('=')[-1].replace('/', '_') for o in options)
        out = os.path.join(self.dir, f'{name}_{mode}_{tag}.rdna1.pt')
        if not os.path.exists(out):
            result = rewrite(*options, sample(name, mode), out)
            self.assertEqual(result.returncode, 0, result.stderr)
        return out

    def test_cpu_uses_host_unless_told(self):
        self.assertEqual(rdna1.backend_for('cpu'), 'host')
        for name in ('device', 'vendor', 'host'):
            rdna1.set_backend(name)
            self.assertEqual(rdna1.backend_for('cpu'), name)
        rdna1.set_backend('auto')
        self.assertEqual(rdna1.backend_for('cpu'), 'host')
        rdna1.set_backend(None)
        self.assertEqual(rdna1.backend_for('cpu'), 'host')
        with self.assertRaisesRegex(RuntimeError, "unknown backend 'gpu'"):
            rdna1.set_backend('gpu')

    def test_environment_variable(self):
        code = 'import rdna1; print(rdna1.backend_for("cpu"))'
        env = dict(os.environ, RDNA1_BACKEND='vendor')
        result = run(PYTHON, '-c', code, env=env)
        self.assertEqual(result.stdout.strip(), 'vendor', result.stderr)
        result = run(PYTHON, '-c', code, env=dict(os.environ, RDNA1_BACKEND='gpu'))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("RDNA1_BACKEND='gpu' is not one of host, device, vendor, auto", result.stderr)

    def test_baked_in_default(self):
        report = os.path.join(self.dir, 'report.json')
        out = self.rewritten('resnet18', 'scripted', '--backend=device', f'--report={report}')
        with open(report) as f:
            self.assertEqual(json.load(f)['default_backend'], 'device')
        module = rdna1.load(out)
        self.assertIn('rdna1::set_default_backend', [n.kind() for n in module.forward.graph.nodes()])
        # A model rewritten without --backend bakes "auto": it resets what another model left.
        plain = rdna1.load(self.rewritten('resnet18', 'scripted'))
        calls = [n for n in plain.forward.graph.nodes() if n.kind() == 'rdna1::set_default_backend']
        self.assertEqual([c.inputsAt(0).toIValue() for c in calls], ['auto'])
        # On the CPU a model's default does not apply: it convolves on the host.
        _, x = sample_models.build('resnet18')
        rdna1.reset_counters()
        with torch.no_grad():
            module(x)
        counters = rdna1.counters()
        self.assertGreater(counters['host_convolutions'], 0)
        self.assertEqual(counters['native_convolutions'], 0)
        # Rewriting with another default changes the file; with the same one it does not.
        again = os.path.join(self.dir, 'again.pt')
        self.assertIn('copied unchanged', rewrite('--backend=device', out, again).stdout)
        self.assertIn('rewrote', rewrite('--backend=host', out, again + '2').stdout)

    def models_with_defaults(self):
        """The audio sample rewritten with each baked-in default, and with none ('auto'), with the
        counter that each one's convolutions must advance on the stand-in device."""
        counters = {'device': 'native_convolutions', 'vendor': 'vendor_convolutions',
                    'host': 'host_convolutions', 'auto': 'host_convolutions'}
        return {name: (rdna1.load(self.rewritten('audio', 'scripted', f'--backend={name}')), counter)
                for name, counter in counters.items()}

    def test_each_model_runs_with_its_own_default(self):
        # In sequence, in any order: each model's convolutions run where its default says, whatever
        # model ran before it on the thread.
        models = self.models_with_defaults()
        _, x = sample_models.build('audio')
        rdna1.set_stand_in_device(True)
        for order in (['device', 'auto', 'vendor', 'host'], ['host', 'vendor', 'auto', 'device'],
                      ['vendor', 'device', 'device', 'auto']):
            for name in order:
                module, counter = models[name]
                rdna1.reset_counters()
                with torch.no_grad():
                    module(x)
                ran = {k: v for k, v in rdna1.counters().items() if k.endswith('_convolutions') and v}
                self.assertEqual(list(ran), [counter], f'{name} after {order}: {ran}')

    def test_models_with_different_defaults_run_side_by_side_on_threads(self):
        import threading
        models = self.models_with_defaults()
        _, x = sample_models.build('audio')
        rdna1.set_stand_in_device(True)
        per_call = {}
        for name, (module, counter) in models.items():  # how many convolutions one call runs
            rdna1.reset_counters()
            with torch.no_grad():
                module(x)
            per_call[name] = rdna1.counters()[counter]
        calls, errors = 20, []
        rdna1.reset_counters()

        def work(name):
            try:
                with torch.no_grad():
                    for _ in range(calls):
                        models[name][0](x)
            except Exception as error:  # noqa: BLE001 - reported by the main thread
                errors.append(error)

        threads = [threading.Thread(target=work, args=(name,)) for name in ('device', 'vendor', 'host')]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        counters = rdna1.counters()
        self.assertEqual(counters['native_convolutions'], calls * per_call['device'])
        self.assertEqual(counters['vendor_convolutions'], calls * per_call['vendor'])
        self.assertEqual(counters['host_convolutions'], calls * per_call['host'])

    def test_bad_backend_option(self):
        result = rewrite('--backend=gpu', sample('audio', 'scripted'), os.path.join(self.dir, 'x.pt'))
        self.assertEqual(result.returncode, 1)
        self.assertIn("backend must be 'auto', 'host', 'device' or 'vendor', got 'gpu'", result.stderr)

    def check_forced(self, backend, kernel_counter):
        for name, mode in (('resnet18', 'scripted'), ('unet', 'traced'), ('audio', 'scripted')):
            with self.subTest(backend=backend, sample=(name, mode)):
                _, x = sample_models.build(name)
                expected = outputs_and_grads(torch.jit.load(sample(name, mode)), x)
                rdna1.set_stand_in_device(True)
                rdna1.set_backend(backend)
                rdna1.reset_counters()
                actual = outputs_and_grads(rdna1.load(self.rewritten(name, mode)), x)
                counters = rdna1.counters()
                rdna1.set_backend(None)
                rdna1.set_stand_in_device(False)
                torch.testing.assert_close(actual[0], expected[0], rtol=1e-4, atol=1e-4)
                torch.testing.assert_close(actual[1], expected[1], rtol=1e-4, atol=1e-4)
                for got, want in zip(actual[2], expected[2]):
                    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
                self.assertGreater(counters[kernel_counter], 0)
                self.assertEqual(counters['host_convolutions'], 0)
                for key in ('to_host_bytes', 'to_device_bytes', 'param_bytes'):
                    self.assertEqual(counters[key], 0, key)

    def test_device_backend_moves_nothing(self):
        self.check_forced('device', 'native_convolutions')

    def test_vendor_backend_moves_nothing(self):
        self.check_forced('vendor', 'vendor_convolutions')

    def test_inference_follows_statistics_updated_in_training_mode(self):
        # Inference keeps what it derives from parameters (the device backend's batch-norm scale
        # and shift, the host backend's host copies) per parameter state; forward passes in training
        # mode with no optimizer step (batch-norm recalibration) change only the running statistics,
        # which ATen's kernel updates without bumping a version counter.
        _, x = sample_models.build('resnet18')
        for backend in ('device', 'host'):
            with self.subTest(backend=backend):
                original = torch.jit.load(sample('resnet18', 'scripted')).eval()
                rdna1.set_stand_in_device(True)
                rdna1.set_backend(backend)
                ours = rdna1.load(self.rewritten('resnet18', 'scripted')).eval()
                rdna1.reset_counters()
                with torch.inference_mode():
                    torch.testing.assert_close(ours(x), original(x), rtol=1e-4, atol=1e-4)
                    for model in (ours, original):
                        model.train()
                        for seed in range(3):
                            torch.manual_seed(seed)
                            model(torch.randn_like(x) * 2 + 1)
                        model.eval()
                    torch.testing.assert_close(ours(x), original(x), rtol=1e-4, atol=1e-4)
                if backend == 'device':
                    counters = rdna1.counters()
                    self.assertEqual(counters['eval_norms'], 2 * 20)
                    self.assertEqual(counters['eval_norm_scales'], 2 * 20, 'computed again after training')
                for key, value in original.state_dict().items():
                    torch.testing.assert_close(ours.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)
                rdna1.set_backend(None)
                rdna1.set_stand_in_device(False)

    def test_probe_on_a_machine_without_gpu(self):
        self.assertIn('no GPU', rdna1.probe())
        result = run(TOOL, '--probe')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r'^no GPU \(HIP: .*\): backend auto runs convolutions on the host\n$')


if __name__ == '__main__':
    unittest.main()
