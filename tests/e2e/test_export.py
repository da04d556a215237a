"""e2e_export: torch.export programs (.pt2) rewritten by rdna1.rewrite, python3 -m rdna1 and
rdna1-rewrite (torch 2.x builds; CMake registers it only there). Models exported for training
from torchvision and the samples: no convolution or cuDNN/MIOpen op left; outputs, every gradient
and the running statistics match the original program on the stand-in device; save -> load -> run;
a second rewrite changes nothing; bad input is one line and an exit code with OUT untouched; an
AOTInductor package runs from C++ with the original's outputs."""
import copy
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import zipfile

import torch
import torch.nn as nn
import torchvision

import rdna1
from rdna1 import export
from e2e_support import BUILD_DIR, PYTHON, SOURCE_DIR, TOOL, digest, run
from sample_models import AudioConvNet, SmallUNet

RUN_AOTI = os.path.join(BUILD_DIR, 'bin', 'rdna1-run-aoti-package')
TOLERANCE = 1e-4  # on max |difference| / max(1, max |reference|), as --verify


class Volume(nn.Module):
    """3-d convolutions, a transposed one, batch and instance norm."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(2, 6, 3, padding=1)
        self.norm = nn.BatchNorm3d(6)
        self.down = nn.Conv3d(6, 6, 3, stride=2, groups=3)
        self.inorm = nn.InstanceNorm3d(6, affine=True, track_running_stats=True)
        self.up = nn.ConvTranspose3d(6, 3, 3, stride=2, output_padding=1)

    def forward(self, x):
        return self.up(torch.relu(self.inorm(self.down(torch.relu(self.norm(self.conv(x)))))))


class Recurrent(nn.Module):
    """An LSTM (MIOpen's RNN on ROCm) after a convolution: a warning, or exit 3 with --strict."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3)
        self.lstm = nn.LSTM(4, 5)

    def forward(self, x):
        return self.lstm(self.conv(x).permute(2, 0, 1))[0]


MODELS = {  # name -> (factory, input shape); small inputs keep the test short
    'resnet18': (lambda: torchvision.models.resnet18(num_classes=10), (2, 3, 64, 64)),
    'mobilenet_v3_small': (lambda: torchvision.models.mobilenet_v3_small(num_classes=10), (2, 3, 64, 64)),
    'efficientnet_b0': (lambda: torchvision.models.efficientnet_b0(num_classes=10), (2, 3, 64, 64)),
    'regnet_y_400mf': (lambda: torchvision.models.regnet_y_400mf(num_classes=10), (2, 3, 64, 64)),
    'unet': (SmallUNet, (2, 3, 32, 32)),
    'audio_conv1d': (AudioConvNet, (2, 1, 1600)),
    'volume_conv3d': (Volume, (2, 2, 8, 8, 8)),
}


def export_for_training(name, seed=0):
    factory, shape = MODELS[name]
    torch.manual_seed(seed)
    model = factory().train()
    x = torch.randn(shape)
    return torch.export.export(model, (x,)), x


def op_names(program):
    return [export._op_name(n.target) for _, gm in export._graphs(program.graph_module)
            for n in gm.graph.nodes if n.op == 'call_function']


def dnn_reaching(names):
    """Op names that would reach cuDNN/MIOpen on a GPU: ATen convolutions, cudnn_/miopen_ ops,
    and the norms that pick them."""
    return [n for n in names if n.startswith('aten::') and (
        re.search(r'conv(?!_tbc)', n) or 'cudnn' in n or 'miopen' in n
        or n.split('.')[0] in ('aten::batch_norm', 'aten::instance_norm', 'aten::_batch_norm_with_update'))]


def relative_error(actual, expected):
    scale = max(1.0, expected.detach().abs().max().item())
    return (actual.detach().double() - expected.detach().double()).abs().max().item() / scale


def forward_backward(program, x, seed=1, dtype=torch.float32):
    """Output, input gradient, parameter gradients (by name) and the state after one training
    forward and backward of program.module() in `dtype`, with a seeded random-weighted loss."""
    module = program.module().to(dtype)
    x = x.clone().to(dtype).requires_grad_(True)
    torch.manual_seed(seed)  # dropout and stochastic depth draw the same numbers in both
    y = module(x)
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(2)).to(dtype)
    (y * weights).sum().backward()
    grads = {name: p.grad for name, p in module.named_parameters()}
    return [('output', y), ('input gradient', x.grad)] + sorted(grads.items()) + \
        [(f'state {k}', v.clone()) for k, v in sorted(module.state_dict().items())]


def assert_close_to_original(test, name, ours, original, original64):
    """Every value of `ours` (the rewritten program in float32) within TOLERANCE of the original
    run in float64, or no further from it than twice the original's own float32 run (resnet18's
    batch-2 input gradient strays 5e-3 in float32 on the CPU, in the original itself)."""
    test.assertEqual([k for k, _ in ours], [k for k, _ in original64])
    for (key, value), (_, value32), (_, value64) in zip(ours, original, original64):
        error = relative_error(value.float(), value64.float())
        floor = relative_error(value32.float(), value64.float())
        test.assertLessEqual(error, max(TOLERANCE, 2 * floor), f'{name}: {key}')


class ExportedModelsTest(unittest.TestCase):
    def check_model(self, name):
        program, x = export_for_training(name)
        reference = copy.deepcopy(program)  # the rewritten program shares weights and buffers
        result = rdna1.rewrite(program)
        rewritten = result.module
        before, after = op_names(program), op_names(rewritten)
        self.assertTrue(dnn_reaching(before), name)
        self.assertEqual(dnn_reaching(after), [], name)
        self.assertIn('rdna1::conv', after)
        convolutions = sum(1 for n in before if 'conv' in n)
        self.assertRegex(result.summary, rf'^rewrote {convolutions} convolution layers? ')
        self.assertEqual(result.report['convolution_layers'], convolutions)
        self.assertEqual(op_names(program), before, 'the original program changed')

        rdna1.reset_counters()
        ours = forward_backward(rewritten, x)
        counters = rdna1.counters()
        self.assertGreater(counters['host_convolutions'], 0)
        if os.environ.get('RDNA1_STAND_IN_DEVICE') == '1':
            self.assertGreater(counters['to_host_copies'], 0)  # the boundary really copies
        original = forward_backward(copy.deepcopy(reference), x)
        original64 = forward_backward(copy.deepcopy(reference), x, dtype=torch.float64)
        assert_close_to_original(self, name, ours, original, original64)

        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, f'{name}.pt2')
            torch.export.save(rewritten, path)
            loaded = torch.export.load(path)
            self.assertEqual(dnn_reaching(op_names(loaded)), [])
            again = rdna1.rewrite(loaded)
            self.assertIs(again.module, loaded)
            self.assertTrue(again.summary.startswith('nothing to rewrite'), again.summary)
            module = loaded.module()
            torch.manual_seed(1)
            y1 = module(x)
            torch.manual_seed(1)
            self.assertLess(relative_error(y1, ours[0][1]), TOLERANCE, name)

    def test_resnet18(self):
        self.check_model('resnet18')

    def test_mobilenet_v3_small(self):
        self.check_model('mobilenet_v3_small')

    def test_efficientnet_b0(self):
        self.check_model('efficientnet_b0')

    def test_regnet_y_400mf(self):
        self.check_model('regnet_y_400mf')

    def test_unet_transposed(self):
        self.check_model('unet')

    def test_conv1d_same_padding(self):
        self.check_model('audio_conv1d')

    def test_conv3d_and_instance_norm(self):
        self.check_model('volume_conv3d')

    def test_decomposed_program(self):
        """A program after run_decompositions() holds aten.convolution and native norms."""
        program, x = export_for_training('unet')
        decomposed = copy.deepcopy(program).run_decompositions()
        self.assertIn('aten::convolution', op_names(decomposed))
        rewritten = rdna1.rewrite(decomposed).module
        self.assertEqual(dnn_reaching(op_names(rewritten)), [])
        with torch.no_grad():
            self.assertLess(relative_error(rewritten.module()(x), decomposed.module()(x)), TOLERANCE)

    def test_training_steps(self):
        """Three SGD steps of the rewritten program's module track the original's."""
        program, x = export_for_training('unet')
        reference = copy.deepcopy(program)
        modules = [rdna1.rewrite(program).module.module(), reference.module()]
        for module in modules:
            optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
            for _ in range(3):
                optimizer.zero_grad()
                module(x).square().mean().backward()
                optimizer.step()
        ours, theirs = (m.state_dict() for m in modules)
        for key in theirs:
            self.assertLess(relative_error(ours[key].float(), theirs[key].float()), 1e-3, key)
        self.assertEqual(ours['enc1.1.num_batches_tracked'].item(), 3)


class CommandLineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.mkdtemp()
        program, cls.x = export_for_training('unet')
        cls.input = os.path.join(cls.directory, 'unet.pt2')
        torch.export.save(program, cls.input)
        recurrent = torch.export.export(Recurrent(), (torch.randn(2, 3, 9),))
        cls.recurrent = os.path.join(cls.directory, 'recurrent.pt2')
        torch.export.save(recurrent, cls.recurrent)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.directory)

    def path(self, name):
        return os.path.join(self.directory, name)

    def test_tool_tells_format_by_content(self):
        out = self.path('out.model')  # no .pt2 suffix on either side
        renamed = self.path('unet.model')
        shutil.copyfile(self.input, renamed)
        done = run(TOOL, renamed, out, '--backend=device', f'--report={self.path("report.json")}')
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stderr, '')
        self.assertEqual(done.stdout.strip(), f'rewrote 8 convolution layers and 6 norm layers (14 code sites in 1 method), '
                                              f'default backend device -> {out}')
        with open(self.path('report.json')) as f:
            report = json.load(f)
        self.assertEqual((report['version'], report['format'], report['convolution_layers'], report['norm_layers'],
                          report['default_backend']), (2, 'exported_program', 8, 6, 'device'))
        with open(out, 'rb') as f:
            loaded = torch.export.load(f)
        self.assertIn('rdna1::set_default_backend', op_names(loaded))
        again = run(TOOL, out, self.path('again.pt2'), '--backend=device')
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn('nothing to rewrite', again.stdout)
        self.assertEqual(digest(out), digest(self.path('again.pt2')))

    def test_python_module_command(self):
        out = self.path('python_m.pt2')
        done = run(PYTHON, '-m', 'rdna1', self.input, out)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), f'rewrote 8 convolution layers and 6 norm layers (14 code sites in 1 method) -> {out}')

    def test_verify(self):
        """--verify-grad runs both programs on the example inputs saved with the program."""
        before = sorted(os.listdir(self.directory))
        done = run(TOOL, self.input, '--dry-run', '--verify-grad')
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertRegex(done.stdout, r'verified: max relative output error \S+, gradient error \S+ \(tolerance 0.0001\)')
        self.assertEqual(sorted(os.listdir(self.directory)), before)

    def test_other_dnn_users_warn_and_strict_refuses(self):
        done = run(TOOL, self.recurrent, self.path('recurrent_out.pt2'))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stderr.strip(), 'rdna1-rewrite: warning: aten::lstm.input in ExportedProgram.forward is not '
                                              'rewritten and will still reach cuDNN/MIOpen on a GPU')
        out = self.path('strict_out.pt2')
        done = run(TOOL, self.recurrent, out, '--strict')
        self.assertEqual(done.returncode, 3)
        self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
        self.assertIn('aten::lstm.input in ExportedProgram.forward would still reach cuDNN/MIOpen (--strict)', done.stderr)
        self.assertFalse(os.path.exists(out))

    def check_refused(self, bad, code, message):
        """Both commands: one error line naming the problem, the exit code, OUT untouched."""
        out = self.path('existing_out.pt2')
        with open(out, 'wb') as f:
            f.write(b'keep me')
        before = sorted(os.listdir(self.directory))
        for command, prefix in ((TOOL,), 'rdna1-rewrite'), ((PYTHON, '-m', 'rdna1'), 'python3 -m rdna1'):
            done = run(*command, bad, out)
            self.assertEqual(done.returncode, code, done.stderr)
            self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
            self.assertRegex(done.stderr, f'^{re.escape(prefix)}: error: .*{message}')
            with open(out, 'rb') as f:
                self.assertEqual(f.read(), b'keep me')
            self.assertEqual(sorted(os.listdir(self.directory)), before)

    def edited_copy(self, name, edit):
        """A copy of the input archive with `edit(entry name, bytes) -> bytes` applied."""
        path = self.path(name)
        with zipfile.ZipFile(self.input) as source, zipfile.ZipFile(path, 'w') as target:
            for info in source.infolist():
                target.writestr(info, edit(info.filename, source.read(info.filename)))
        return path

    def test_damaged_archive(self):
        path = self.path('damaged.pt2')
        shutil.copyfile(self.input, path)
        with zipfile.ZipFile(path) as archive:
            info = next(i for i in archive.infolist() if i.filename.endswith('weights/weight_0'))
            with open(path, 'rb') as f:  # the entry's data follows its local header
                f.seek(info.header_offset + 26)
                skip = int.from_bytes(f.read(2), 'little') + int.from_bytes(f.read(2), 'little')
        with open(path, 'r+b') as f:
            f.seek(info.header_offset + 30 + skip + 5)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0xff]))
        self.check_refused(path, 2, r"entry '.*weight_0' does not match its CRC-32")

    def test_unsupported_torch(self):
        def newer_schema(name, data):
            if not name.endswith('models/model.json'):
                return data
            model = json.loads(data)
            model['schema_version']['major'] += 100
            return json.dumps(model).encode()
        self.check_refused(self.edited_copy('newer.pt2', newer_schema), 2,
                           r"cannot load '.*newer.pt2': it was saved by a torch whose export format this torch")

    def test_not_a_program(self):
        broken = self.edited_copy('broken.pt2', lambda name, data: b'{' if name.endswith('models/model.json') else data)
        self.check_refused(broken, 2, r"cannot load '.*broken.pt2'")
        saved = self.path('tensors.pt2')
        torch.save({'x': torch.ones(2)}, saved)
        self.check_refused(saved, 2, r'not a TorchScript model')
        noise = self.path('noise.pt2')
        with open(noise, 'wb') as f:
            f.write(os.urandom(4096))
        self.check_refused(noise, 2, r'not a TorchScript model')


class AotInductorTest(unittest.TestCase):
    @unittest.skipUnless(os.path.exists(RUN_AOTI), 'rdna1-run-aoti-package not built')
    def test_package_runs_from_cpp(self):
        torch.manual_seed(0)
        model = SmallUNet(width=4).eval()
        x = torch.randn(1, 3, 16, 16)
        with tempfile.TemporaryDirectory() as directory:
            program = torch.export.export(model, (x,))
            package = rdna1.aot_compile(program, os.path.join(directory, 'unet_aoti.pt2'))
            with zipfile.ZipFile(package) as archive:
                code = ''.join(archive.read(n).decode() for n in archive.namelist() if n.endswith('wrapper.cpp'))
            self.assertEqual(code.count('aoti_torch_proxy_executor_call_function('), 8)  # one per rdna1::conv
            self.assertNotIn('convolution(', code.replace('rdna1.conv', ''))
            torch.save([x], os.path.join(directory, 'inputs.pt'))
            outputs = os.path.join(directory, 'outputs.pt')
            env = dict(os.environ, RDNA1_STAND_IN_DEVICE='0')
            done = run(RUN_AOTI, package, os.path.join(directory, 'inputs.pt'), outputs, '--backend', 'host', env=env)
            self.assertEqual(done.returncode, 0, done.stderr)
            (y,) = torch.load(outputs)
            with torch.no_grad():
                self.assertLess(relative_error(y, model(x)), TOLERANCE)
            refused = run(TOOL, package, os.path.join(directory, 'out.pt2'))
            self.assertEqual(refused.returncode, 2)
            self.assertIn('is an AOTInductor package (compiled code), not a program', refused.stderr)


if __name__ == '__main__':
    unittest.main()
