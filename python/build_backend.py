"""The rdna1 package's build backend (PEP 517): builds the native libraries with CMake against
the torch that the installing Python imports, as torchaudio does, and packs them beside the
Python code in a wheel for that platform and that torch.

    pip install --no-build-isolation ./python

`--no-build-isolation` lets the build see the user's torch. The backend needs nothing but the
standard library, CMake and a compiler: no setuptools or wheel package, no network.
Environment: CMAKE_BUILD_PARALLEL_LEVEL (jobs; default every core), RDNA1_CMAKE_ARGS (more
configure arguments)."""
import base64
import glob
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
PACKAGE = 'rdna1'


def fail(message):
    """One line on stderr and a non-zero exit: pip shows it as the build's error."""
    print(f'rdna1: error: {message}', file=sys.stderr)
    raise SystemExit(1)


def importable_torch():
    try:
        import torch
    except ImportError as error:
        fail(f'no torch is importable by {sys.executable} ({error}); install torch first, then '
             f'`pip install --no-build-isolation ./python` (docs/install.md)')
    return torch


def project_metadata():
    """name, version, summary, requires-python and dependencies from pyproject.toml's [project]
    (read by pattern: tomllib is not in every Python this supports)."""
    with open(os.path.join(HERE, 'pyproject.toml')) as f:
        text = f.read()

    def field(key):
        match = re.search(rf'^{key}\s*=\s*"([^"]*)"', text, re.M)
        return match.group(1) if match else ''
    dependencies = re.search(r'^dependencies\s*=\s*\[([^\]]*)\]', text, re.M)
    return {'name': field('name'), 'version': field('version'), 'summary': field('description'),
            'requires_python': field('requires-python'),
            'dependencies': re.findall(r'"([^"]+)"', dependencies.group(1) if dependencies else '')}


def distribution():
    meta = project_metadata()
    return f"{meta['name']}-{meta['version']}"


def wheel_tag():
    """cpXY-cpXY-PLATFORM: the libraries are built for this interpreter's torch on this platform."""
    python = f'cp{sys.version_info.major}{sys.version_info.minor}'
    platform = re.sub(r'[-.]', '_', sysconfig.get_platform())
    return f'{python}-{python}-{platform}'


def write_metadata(dist_info):
    meta = project_metadata()
    os.makedirs(dist_info, exist_ok=True)
    lines = ['Metadata-Version: 2.1', f"Name: {meta['name']}", f"Version: {meta['version']}",
             f"Summary: {meta['summary']}", f"Requires-Python: {meta['requires_python']}"]
    lines += [f'Requires-Dist: {requirement}' for requirement in meta['dependencies']]
    with open(os.path.join(HERE, 'README.md')) as f:
        readme = f.read()
    with open(os.path.join(dist_info, 'METADATA'), 'w') as f:
        f.write('\n'.join(lines) + '\nDescription-Content-Type: text/markdown\n\n' + readme)
    with open(os.path.join(dist_info, 'WHEEL'), 'w') as f:
        f.write(f'Wheel-Version: 1.0\nGenerator: rdna1 build_backend\nRoot-Is-Purelib: false\nTag: {wheel_tag()}\n')


def cmake(*args):
    try:
        subprocess.run(['cmake', *args], check=True, stdout=sys.stderr)
    except FileNotFoundError:
        fail('cmake not found; install it (apt-get install cmake, or pip install cmake)')
    except subprocess.CalledProcessError as error:
        fail(f'cmake {args[0]} failed (exit {error.returncode}); its output is above')


def build_native(torch):
    """Configures, builds and installs the runtime, the rewriter and the probe into a staging
    prefix; returns it. One build folder per torch, kept, so that a reinstall only relinks."""
    if not os.path.isfile(os.path.join(SOURCE, 'CMakeLists.txt')):
        fail(f'no CMakeLists.txt in {SOURCE}: install from a checkout of the whole project')
    key = hashlib.sha256(f'{torch.__file__} {torch.__version__}'.encode()).hexdigest()[:12]
    build = os.path.join(HERE, 'build', f'cmake-{key}')
    staging = os.path.join(build, 'staged')
    shutil.rmtree(staging, ignore_errors=True)
    cmake('-S', SOURCE, '-B', build, '-DCMAKE_BUILD_TYPE=Release', f'-DRDNA1_PYTHON={sys.executable}',
          '-DRDNA1_BUILD_TOOL=OFF', '-DRDNA1_BUILD_TESTS=OFF', '-DRDNA1_BUILD_SAMPLES=OFF',
          *shlex.split(os.environ.get('RDNA1_CMAKE_ARGS', '')))
    cmake('--build', build, '-j', os.environ.get('CMAKE_BUILD_PARALLEL_LEVEL') or str(os.cpu_count() or 1))
    cmake('--install', build, '--prefix', staging)
    return staging


def native_files(prefix):
    """(path, name in the package): the runtime and rewriter libraries under the names they ask
    each other for (a wheel holds no symlinks), the record of the torch they were built for,
    and the probe program."""
    files = []
    for stem in ('librdna1_runtime.so', 'librdna1_rewriter.so'):
        versioned = [p for p in glob.glob(os.path.join(prefix, 'lib*', stem + '.*')) if not os.path.islink(p)]
        if not versioned:
            fail(f'{stem} not found under {prefix} after the build')
        soname = stem + '.' + '.'.join(os.path.basename(versioned[0])[len(stem) + 1:].split('.')[:2])
        files.append((versioned[0], soname))
    files += [(p, os.path.basename(p)) for p in glob.glob(os.path.join(prefix, 'lib*', 'rdna1_torch_version.txt'))]
    files += [(p, 'rdna1-probe') for p in glob.glob(os.path.join(prefix, 'bin', 'rdna1-probe'))]
    return files


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
    return f'{name},sha256={digest},{len(data)}'


# PEP 517 hooks.

def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    importable_torch()  # before pip resolves dependencies: no torch means one line, never a download
    name = f'{distribution()}.dist-info'
    write_metadata(os.path.join(metadata_directory, name))
    return name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    staging = build_native(importable_torch())
    dist_info = f'{distribution()}.dist-info'
    metadata = os.path.join(HERE, 'build', 'metadata')
    shutil.rmtree(metadata, ignore_errors=True)
    write_metadata(os.path.join(metadata, dist_info))
    members = [(p, f'{PACKAGE}/{os.path.basename(p)}') for p in sorted(glob.glob(os.path.join(HERE, PACKAGE, '*.py')))]
    members += [(p, f'{PACKAGE}/{name}') for p, name in native_files(staging)]
    members += [(os.path.join(metadata, dist_info, name), f'{dist_info}/{name}') for name in ('METADATA', 'WHEEL')]
    wheel = f'{distribution()}-{wheel_tag()}.whl'
    records = []
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), 'w', zipfile.ZIP_DEFLATED) as archive:
        for path, name in members:
            with open(path, 'rb') as f:
                data = f.read()
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (os.stat(path).st_mode & 0o777 | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
            records.append(record_line(name, data))
        records.append(f'{dist_info}/RECORD,,')
        archive.writestr(f'{dist_info}/RECORD', '\n'.join(records) + '\n')
    return wheel
