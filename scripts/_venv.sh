# Sourced by scripts/jbrain and scripts/test: make ./.venv (once) with jbrain
# installed in editable mode. Needs only Python >= 3.11 on PATH.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${JBRAIN_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "jbrain needs Python >= 3.11 (found $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 2
}
stamp="$VENV/.jbrain-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  echo "setting up $VENV (first run only) ..." >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  # PYTHONWARNINGS: setuptools notes on editable installs are not for users
  PYTHONWARNINGS=ignore "$VENV/bin/python" -m pip install -q -e "$ROOT[test]" >&2
  # the compiled CPU kernel, now rather than at the first run (no compiler: XLA runs instead)
  JAX_PLATFORMS=cpu "$VENV/bin/python" -c 'from jbrain.backends import cpu_native; cpu_native.main()' >/dev/null || true
  touch "$stamp"
fi
