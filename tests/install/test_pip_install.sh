#!/usr/bin/env bash
# `pip install --no-build-isolation ./python` as a user would, for the torch of PYTHON: in a fresh
# venv that sees that torch and nothing of the checkout, offline, with no earlier build. The
# install builds the native libraries against that torch; the installed package then rewrites a
# scripted resnet18 that plain torch.jit.load runs (check_pip_install.py). Also: without torch the
# install stops with one line, and a package whose libraries were built for another torch says so
# in one line at import.
# Usage: test_pip_install.sh PYTHON SOURCE_DIR [CHECK_ARGS...] (check_pip_install.py's options)
set -euo pipefail
python=$1 source=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset RDNA1_RUNTIME PYTHONPATH
quiet() { local log=$work/step.log; "$@" >"$log" 2>&1 || { cat "$log"; exit 1; }; }

# Debian's torch is a system package (--system-site-packages); a venv's torch is seen through a .pth
# file, as a torch shared between environments would be.
venv=$work/venv
if "$python" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
  quiet "$python" -m venv "$venv"
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$python" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))' >"$site/user-torch.pth"
else
  quiet "$python" -m venv --system-site-packages "$venv"
fi
want=$("$python" -c 'import torch; print(torch.__version__)')
have=$("$venv/bin/python" -c 'import torch; print(torch.__version__)')
[[ $want == "$have" ]] || { echo "the fresh venv sees torch $have, not $want"; exit 1; }

start=$SECONDS
quiet "$venv/bin/python" -m pip install --no-build-isolation --no-index "$source/python"
echo "pip install built and installed rdna1 for torch $have in $((SECONDS - start)) s"
cd "$work"
"$venv/bin/python" "$source/tests/install/check_pip_install.py" "$venv" "$@"

# The package's libraries built for another torch: one line naming both versions at import.
record=$("$venv/bin/python" -c 'import glob, os, sysconfig; print(glob.glob(os.path.join(sysconfig.get_paths()["platlib"], "rdna1", "rdna1_torch_version.txt"))[0])')
echo "0.0.1+other" >"$record"
if "$venv/bin/python" -c 'import rdna1' 2>"$work/mismatch.log"; then
  echo "import rdna1 succeeded with libraries built for another torch"; exit 1
fi
grep -F "was built for torch 0.0.1+other, but this Python imports torch $have; " "$work/mismatch.log" ||
  { cat "$work/mismatch.log"; exit 1; }

# No torch at all: one line, and pip neither downloads nor replaces anything (--no-index would
# fail loudly if it tried).
quiet "$python" -m venv "$work/bare"
if "$work/bare/bin/python" -m pip install --no-build-isolation --no-index "$source/python" >"$work/bare.log" 2>&1; then
  echo "pip install succeeded without torch"; exit 1
fi
grep -E '^ *rdna1: error: no torch is importable by .*; install torch first' "$work/bare.log" ||
  { cat "$work/bare.log"; exit 1; }
echo "pip install test passed for torch $have"
