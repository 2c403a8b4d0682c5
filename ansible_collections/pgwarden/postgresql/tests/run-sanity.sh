#!/usr/bin/env bash
# ansible-test sanity for this collection on a machine that reaches PyPI but not ansible-test's own
# download host: ansible-test bootstraps pip in each test venv with a get-pip script it downloads;
# this puts a stand-in in its cache that installs the same pip from its wheel (from PyPI) instead.
#   usage: tests/run-sanity.sh [ansible-test sanity options]   (from anywhere; ansible-test on PATH)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pip_version=24.2   # what ansible-test pins; it names the cached script
cache="$HOME/.ansible/test/cache"
stand_in="$cache/get_pip_${pip_version//./_}.py"
if [ ! -f "$stand_in" ]; then
  mkdir -p "$cache/wheels"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$cache/wheels" "pip==$pip_version"
  cat > "$stand_in" <<PY
# stand-in for get-pip.py: run pip from its wheel to install the requested packages
import glob, sys
sys.path.insert(0, glob.glob("$cache/wheels/pip-$pip_version-*.whl")[0])
from pip._internal.cli.main import main
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", *args]))
PY
fi
cd "$here"
exec ansible-test sanity --python "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" --color no "$@"
