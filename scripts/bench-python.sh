#!/usr/bin/env bash
# The Python package's benchmark (scripts/bench-python.py): a release wheel installed into its
# own virtual environment, $CARGO_TARGET_DIR/py-bench-venv, with http-logging when it
# installs. http-logging 2.x imports only on Python ≤ 3.10, so a python3.10 is used when there
# is one ($PYTHON overrides); the abi3 wheel runs on either.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    for p in python3.10 "$(pyenv root 2>/dev/null)"/versions/3.10*/bin/python3.10; do
        if "$p" -c 'import venv' 2>/dev/null; then
            PYTHON="$p"
            break
        fi
    done
fi
TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac
VENV="$TARGET/py-bench-venv"
if ! "$VENV/bin/python" -c 'import maturin' 2>/dev/null; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check 'maturin>=1.7,<2'
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check http-logging \
        || echo "bench-python: http-logging does not install here; it is left out" >&2
fi
WHEELS="$TARGET/py-wheels"
rm -rf "$WHEELS"
(
    cd crates/belfry-py
    "$VENV/bin/maturin" build --release --locked --quiet --target-dir "$TARGET" --out "$WHEELS" \
        -i "$VENV/bin/python"
)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
    "$WHEELS"/belfry-*.whl
exec "$VENV/bin/python" scripts/bench-python.py
