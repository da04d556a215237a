#!/usr/bin/python3
"""rdna1-rewrite on bad input: one clear line, a documented exit code, IN unchanged, no OUT."""
import os
import shutil
import stat
import subprocess
import tempfile
import unittest
import zipfile

import torch

from e2e_support import TOOL, digest, rewrite, sample

EXIT_USAGE, EXIT_BAD_INPUT, EXIT_CANNOT_WRITE = 1, 2, 4


class BadInputTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.out = os.path.join(self.dir, 'out.pt')

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, 'wb') as f:
            f.write(data)
        return path

    def assertFailsCleanly(self, args, code, message, unchanged=None):
        """One error line with `message`, exit `code`, `unchanged` intact, nothing new written."""
        files_before = set(os.listdir(self.dir))
        digest_before = digest(unchanged) if unchanged else None
        result = rewrite(*args)
        self.assertEqual(result.returncode, code, result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, f'expected one line, got: {result.stderr!r}')
        self.assertTrue(lines[0].startswith('rdna1-rewrite: error: '), lines[0])
        self.assertIn(message, lines[0])
        self.assertEqual(result.stdout, '')
        self.assertEqual(set(os.listdir(self.dir)), files_before, 'output or temporary file left behind')
        if unchanged:
            self.assertEqual(digest(unchanged), digest_before, 'input file changed')
        return lines[0]

    def test_missing_file(self):
        self.assertFailsCleanly(['missing.pt', self.out], EXIT_BAD_INPUT, "cannot read 'missing.pt': no such file")

    def test_directory(self):
        self.assertFailsCleanly([self.dir, self.out], EXIT_BAD_INPUT, 'is a directory')

    def test_text_file(self):
        readme = os.path.join(os.path.dirname(TOOL), '..', '..', 'README.md')
        path = readme if os.path.exists(readme) else self.write('notes.txt', b'hello\n')
        self.assertFailsCleanly([path, self.out], EXIT_BAD_INPUT, 'not a TorchScript model (not a zip archive)')

    def test_empty_file(self):
        path = self.write('empty.pt', b'')
        self.assertFailsCleanly([path, self.out], EXIT_BAD_INPUT, 'not a zip archive', unchanged=path)

    def test_random_bytes(self):
        path = self.write('random.pt', os.urandom(4096))
        self.assertFailsCleanly([path, self.out], EXIT_BAD_INPUT, 'not a TorchScript model', unchanged=path)

    def test_zip_that_is_not_torchscript(self):
        path = os.path.join(self.dir, 'data.pt')
        with zipfile.ZipFile(path, 'w') as archive:
            archive.writestr('archive/hello.txt', 'hello')
        self.assertFailsCleanly([path, self.out], EXIT_BAD_INPUT, 'not a TorchScript model', unchanged=path)

    def test_truncated_archive(self):
        with open(sample('unet', 'scripted'), 'rb') as f:
            data = f.read()
        path = self.write('truncated.pt', data[:len(data) // 2])
        self.assertFailsCleanly([path, self.out], EXIT_BAD_INPUT, 'not a TorchScript model', unchanged=path)

    def damaged_copy(self, name, entry_suffix):
        """A copy of sample `name` with one byte of the entry ending in `entry_suffix` flipped:
        the zip structure is intact, only that entry's bytes no longer match its CRC-32."""
        path = os.path.join(self.dir, f'damaged-{name}.pt')
        shutil.copy(sample(name, 'scripted'), path)
        with zipfile.ZipFile(path) as archive:
            info = next(i for i in archive.infolist() if i.filename.endswith(entry_suffix))
        with open(path, 'r+b') as f:
            f.seek(info.header_offset + 26)
            name_length, extra_length = (int.from_bytes(f.read(2), 'little') for _ in range(2))
            at = info.header_offset + 30 + name_length + extra_length + info.compress_size // 2
            f.seek(at)
            byte = f.read(1)[0]
            f.seek(at)
            f.write(bytes([byte ^ 0x10]))
        return path, info.filename

    def test_damaged_weights(self):
        path, entry = self.damaged_copy('unet', '/data/0')
        with zipfile.ZipFile(path) as archive:
            self.assertEqual(archive.testzip(), entry)  # the damage is real, and libtorch alone loads it
        torch.jit.load(path)
        self.assertFailsCleanly([path, self.out], EXIT_BAD_INPUT,
                                f"entry '{entry}' fails its CRC-32 check", unchanged=path)

    def test_damaged_weights_through_python(self):
        path, entry = self.damaged_copy('audio', '/data/0')
        import rdna1
        with self.assertRaisesRegex(RuntimeError, f"entry '{entry}' fails its CRC-32 check"):
            rdna1.rewrite(path, self.out)
        self.assertFalse(os.path.exists(self.out))

    def test_archives_that_crash_libtorch(self):
        # libtorch 1.13 segfaults or aborts loading these (tests/e2e/data/README.md); the tool
        # rewrites in a child process and reports the crash. The segfault is undefined behaviour:
        # now and then libtorch throws instead (its message, or an empty one, which the tool words).
        for name, signal in (('libtorch-segv-class-constant.pt', 'Segmentation fault'),
                             ('libtorch-abort-debug-records.pt', 'Aborted')):
            with self.subTest(archive=name):
                path = os.path.join(self.dir, name)
                shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', name), path)
                line = self.assertFailsCleanly([path, self.out], EXIT_BAD_INPUT,
                                               f"cannot load '{path}': ", unchanged=path)
                # Or libtorch's own reason, when it throws instead of crashing.
                self.assertTrue(f'libtorch crashed reading it ({signal});' in line or
                                'libtorch failed reading it without saying why;' in line or
                                'for class constant' in line, line)

    def test_model_saved_by_a_newer_torch(self):
        # Saved by torch 2.11, it calls scaled_dot_product_attention, which torch 1.13 lacks: a
        # 1.13 build names both torches in one line; a 2.x build rewrites it.
        path = os.path.join(self.dir, 'torch2-attention.pt')
        shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'torch2-attention.pt'), path)
        if int(torch.__version__.split('.')[0]) < 2:
            self.assertFailsCleanly([path, self.out], EXIT_BAD_INPUT,
                                    f"it was saved by torch 2.x, newer than this tool's torch {torch.__version__} "
                                    '(Unknown builtin op: aten::scaled_dot_product_attention', unchanged=path)
        else:
            result = rewrite(path, self.out)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertRegex(result.stdout, r'^rewrote 1 convolution layer')

    def test_torch_save_pickle(self):
        path = os.path.join(self.dir, 'state.pt')
        torch.save(torch.nn.Conv2d(1, 1, 1), path)
        self.assertFailsCleanly([path, self.out], EXIT_BAD_INPUT, 'torch.save', unchanged=path)

    def test_same_input_and_output(self):
        path = os.path.join(self.dir, 'model.pt')
        shutil.copy(sample('audio', 'scripted'), path)
        before = digest(path)
        result = rewrite(path, path)
        self.assertEqual(result.returncode, EXIT_CANNOT_WRITE, result.stderr)
        self.assertIn('refusing to overwrite the input', result.stderr)
        self.assertEqual(digest(path), before)

    def test_same_input_and_output_through_symlink(self):
        path = os.path.join(self.dir, 'model.pt')
        shutil.copy(sample('audio', 'scripted'), path)
        link = os.path.join(self.dir, 'link.pt')
        os.symlink(path, link)
        before = digest(path)
        result = rewrite(path, link)
        self.assertEqual(result.returncode, EXIT_CANNOT_WRITE, result.stderr)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1)
        self.assertEqual(digest(path), before)

    def test_output_directory_missing(self):
        result = rewrite(sample('audio', 'scripted'), os.path.join(self.dir, 'no', 'such', 'out.pt'))
        self.assertEqual(result.returncode, EXIT_CANNOT_WRITE, result.stderr)
        self.assertIn("no directory", result.stderr)
        self.assertEqual(os.listdir(self.dir), [])

    def test_output_is_not_a_regular_file(self):
        fifo = os.path.join(self.dir, 'pipe')
        os.mkfifo(fifo)
        self.assertFailsCleanly([sample('audio', 'scripted'), fifo], EXIT_CANNOT_WRITE, 'not a regular file')
        self.assertTrue(stat.S_ISFIFO(os.stat(fifo).st_mode))

    def test_unwritable_output_directory(self):
        readonly = os.path.join(self.dir, 'readonly')
        os.mkdir(readonly, 0o555)
        if os.access(readonly, os.W_OK):
            self.skipTest('running as root, which may write anyway: see test_read_only_file_system')
        self.assertFailsCleanly([sample('audio', 'scripted'), os.path.join(readonly, 'out.pt')], EXIT_CANNOT_WRITE,
                                'is not writable')

    def in_small_file_system(self, mount_options, *args):
        """Runs the tool with OUT on a fresh 1 MiB tmpfs mounted with `mount_options`, in a private
        mount namespace; returns the result and what the file system held afterwards."""
        if shutil.which('unshare') is None:
            self.skipTest('unshare is not installed')
        probe = subprocess.run(['unshare', '-m', 'true'], capture_output=True)
        if probe.returncode != 0:
            self.skipTest(f'cannot make a mount namespace here: {probe.stderr.decode().strip()}')
        mount_point = os.path.join(self.dir, 'fs')
        os.mkdir(mount_point)
        script = ('mount -t tmpfs -o size=1m tmpfs "$1" && mount -o "remount,$2" "$1" && shift 2 && '
                  '"$@" 2>&1; code=$?; echo "files: $(ls -A "$MOUNT_POINT")"; exit $code')
        result = subprocess.run(['unshare', '-m', 'sh', '-c', script, 'sh', mount_point, mount_options, TOOL, *args],
                                capture_output=True, text=True, env={**os.environ, 'MOUNT_POINT': mount_point})
        os.rmdir(mount_point)
        *output, listing = result.stdout.splitlines()
        return result.returncode, '\n'.join(output), listing.strip()

    def test_full_file_system(self):
        source = sample('resnet18', 'scripted')  # 40 MB: far more than the 1 MiB file system holds
        before = digest(source)
        code, output, listing = self.in_small_file_system('rw', source, os.path.join(self.dir, 'fs', 'out.pt'))
        self.assertEqual(code, EXIT_CANNOT_WRITE, output)
        self.assertEqual(output.count('\n'), 0, output)
        self.assertRegex(output, r"^rdna1-rewrite: error: cannot write '.*out.pt': No space left on device$")
        self.assertEqual(listing, 'files:', 'partial output or temporary file left behind')
        self.assertEqual(digest(source), before)

    def test_read_only_file_system(self):
        source = sample('audio', 'scripted')
        code, output, listing = self.in_small_file_system('ro', source, os.path.join(self.dir, 'fs', 'out.pt'))
        self.assertEqual(code, EXIT_CANNOT_WRITE, output)
        self.assertRegex(output, r"^rdna1-rewrite: error: cannot write '.*out.pt': directory '.*' is not writable: "
                                 r"Read-only file system$")
        self.assertEqual(listing, 'files:')

    def test_model_without_convolutions(self):
        path = os.path.join(self.dir, 'mlp.pt')
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        torch.jit.script(model).save(path)
        before = digest(path)
        result = rewrite(path, self.out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('nothing to rewrite', result.stdout)
        self.assertEqual(result.stderr, '')
        self.assertEqual(digest(path), before)
        x = torch.randn(3, 4)
        torch.testing.assert_close(torch.jit.load(self.out)(x), torch.jit.load(path)(x), rtol=0, atol=0)

    def test_missing_output_argument(self):
        result = rewrite(sample('audio', 'scripted'))
        self.assertEqual(result.returncode, EXIT_USAGE)
        self.assertIn('missing <out.pt>', result.stderr)

    def test_unknown_option(self):
        result = rewrite('--no-such-option', sample('audio', 'scripted'), self.out)
        self.assertEqual(result.returncode, EXIT_USAGE)
        self.assertFalse(os.path.exists(self.out))


class HelpTest(unittest.TestCase):
    def test_help_lists_options_and_exit_codes(self):
        result = rewrite('--help')
        self.assertEqual(result.returncode, 0)
        for text in ('--dry-run', '--report=<file.json>', '-v', 'Exit codes', '<in.pt>', '<out.pt>',
                     '--regions=<mode>', 'per-op', '--backend=<name>', '--strict', '--probe'):
            self.assertIn(text, result.stdout)

    def test_version(self):
        result = rewrite('--version')
        self.assertEqual(result.returncode, 0)
        self.assertRegex(result.stdout, r'rdna1-rewrite \d+\.\d+\.\d+\nHIP: ')


if __name__ == '__main__':
    unittest.main()
