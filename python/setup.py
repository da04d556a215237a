"""Packs the rdna1 Python package with the native libraries it loads (pyproject.toml has the
metadata). The libraries come from an install prefix (RDNA1_PREFIX) or from a CMake build
directory (RDNA1_BUILD_DIR, default ../build), installed into a staging prefix first so that
their relative run paths ($ORIGIN) hold inside the package."""
import glob
import os
import shutil
import subprocess
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def staged_prefix(staging):
    prefix = os.environ.get('RDNA1_PREFIX')
    if prefix:
        return prefix
    build = os.environ.get('RDNA1_BUILD_DIR', os.path.join(HERE, os.pardir, 'build'))
    if not os.path.isfile(os.path.join(build, 'CMakeCache.txt')):
        raise SystemExit(f'rdna1: no CMake build in {os.path.abspath(build)}: build the project first '
                         '(scripts/setup.sh), or set RDNA1_PREFIX to an installed prefix')
    subprocess.run(['cmake', '--install', build, '--prefix', staging], check=True, stdout=subprocess.DEVNULL)
    return staging


def native_files(prefix):
    """The runtime and rewriter libraries under their SONAMEs (no symlinks: wheels have none),
    and the probe program."""
    files = []
    for stem in ('librdna1_runtime.so', 'librdna1_rewriter.so'):
        versioned = [p for p in glob.glob(os.path.join(prefix, 'lib*', stem + '.*')) if not os.path.islink(p)]
        if not versioned:
            raise SystemExit(f'rdna1: {stem} not found under {prefix}')
        real = versioned[0]
        soname = stem + '.' + '.'.join(os.path.basename(real)[len(stem) + 1:].split('.')[:2])
        files.append((real, soname))
    probe = os.path.join(prefix, 'bin', 'rdna1-probe')
    if os.path.isfile(probe):
        files.append((probe, 'rdna1-probe'))
    return files


class BuildWithLibraries(build_py):
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, 'rdna1')
        with tempfile.TemporaryDirectory() as staging:
            for source, name in native_files(staged_prefix(staging)):
                shutil.copy2(source, os.path.join(target, name))


setup(cmdclass={'build_py': BuildWithLibraries})
