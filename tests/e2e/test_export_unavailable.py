"""e2e_export_unavailable: a build for a torch without torch.export (1.13) refuses a .pt2 program
in one line, exit 2, OUT untouched: rdna1-rewrite (told by the archive's records, whatever the
suffix) and python3 -m rdna1 alike."""
import os
import tempfile
import unittest
import zipfile

from e2e_support import PYTHON, TOOL, run


class ExportUnavailableTest(unittest.TestCase):
    def test_program_refused_in_one_line(self):
        with tempfile.TemporaryDirectory() as directory:
            program = os.path.join(directory, 'program.bin')  # the records tell, not the suffix
            with zipfile.ZipFile(program, 'w') as archive:  # what torch.export.save writes first
                archive.writestr('program/archive_format', 'pt2')
                archive.writestr('program/models/model.json', '{}')
            out = os.path.join(directory, 'out.pt2')
            with open(out, 'wb') as f:
                f.write(b'keep me')
            for command, prefix in (((TOOL,), 'rdna1-rewrite'), ((PYTHON, '-m', 'rdna1'), 'python3 -m rdna1')):
                done = run(*command, program, out)
                self.assertEqual(done.returncode, 2, done.stderr)
                self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
                self.assertRegex(done.stderr, f'^{prefix}: error: .*torch.export needs torch 2.x')
                with open(out, 'rb') as f:
                    self.assertEqual(f.read(), b'keep me')
                self.assertEqual(sorted(os.listdir(directory)), ['out.pt2', 'program.bin'])


if __name__ == '__main__':
    unittest.main()
