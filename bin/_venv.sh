# Sourced by bin/demo and bin/test: make .venv with gabay installed (once), then reuse it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GABAY_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
stamp="$VENV/.gabay-installed"
if [ ! -x "$VENV/bin/python" ] || [ "$ROOT/setup.cfg" -nt "$stamp" ]; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        echo "gabay needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
    touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
