# Sourced by bin/demo and bin/test: make .venv with gabay installed (once), then reuse it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GABAY_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
stamp="$VENV/.gabay-installed"
if [ ! -x "$VENV/bin/python" ] || [ "$ROOT/setup.cfg" -nt "$stamp" ]; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        echo "gabay needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
    echo "Setting up $VENV (first run only; log in $VENV-install.log)..." >&2
    "$PYTHON" -m venv "$VENV"
    if ! { "$VENV/bin/python" -m pip install --upgrade pip &&
           "$VENV/bin/python" -m pip install -e "$ROOT[dev]"; } > "$VENV-install.log" 2>&1; then
        tail -n 30 "$VENV-install.log" >&2
        echo "installation failed; the whole log is in $VENV-install.log" >&2
        exit 1
    fi
    touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
