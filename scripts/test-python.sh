#!/usr/bin/env bash
# Builds the Python package (crates/belfry-py) into its own virtual environment and runs its
# pytest suite. The environment, $CARGO_TARGET_DIR/py-venv (default target/py-venv), is made
# when missing, with maturin, pytest, aiosmtpd (the real SMTP server) and mypy (the stubs'
# check). The wheel is a dev-profile build (fast to build; the benchmark builds a release one).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac
VENV="$TARGET/py-venv"

if ! "$VENV/bin/python" -c 'import maturin, pytest, aiosmtpd, mypy' 2>/dev/null; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        'maturin>=1.7,<2' pytest aiosmtpd mypy
fi

# `maturin develop` installs the package into the environment as an editable install; the
# native module is built with pyo3/extension-module (pyproject's [tool.maturin] features).
(
    cd crates/belfry-py
    VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" maturin develop --quiet --locked \
        --target-dir "$TARGET"
)
"$VENV/bin/python" -c 'import belfry._belfry' || {
    echo "test-python: the belfry package did not install into $VENV" >&2
    exit 1
}
exec "$VENV/bin/python" -m pytest -q crates/belfry-py/tests "$@"
