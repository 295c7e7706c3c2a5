#!/usr/bin/env bash
# The dashboard's browser tests (crates/belfry-server/tests/browser/): headless Chromium driven
# by Playwright against a real `belfry serve`. Installs what they need, each only when missing:
# - Debian's chromium (apt-get), used as it is: Playwright downloads no browser of its own;
# - a virtual environment, $CARGO_TARGET_DIR/browser-venv (default target/browser-venv), with
#   playwright, pytest and argon2-cffi (the test's password hashes) from PyPI;
# then builds the belfry binary and runs pytest. Arguments go to pytest.
# BELFRY_SCREENSHOTS=DIR keeps the pages' screenshots there (scripts/screenshots.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac
VENV="$TARGET/browser-venv"
CHROMIUM="${BELFRY_CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    [ -x "$CHROMIUM" ] || {
        echo "test-browser: $CHROMIUM is still missing" >&2
        exit 1
    }
fi

if ! "$VENV/bin/python" -c 'import playwright, pytest, argon2, axe_playwright_python' 2>/dev/null; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: only the Python package and its driver; the browser is
    # Debian's.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$VENV/bin/python" -m pip install --quiet \
        --disable-pip-version-check 'playwright>=1.49,<2' pytest argon2-cffi \
        'axe-playwright-python>=0.1.8,<0.2'
fi

cargo build -p belfry-cli --locked --quiet
export BELFRY_BIN="$TARGET/debug/belfry"
export BELFRY_CHROMIUM="$CHROMIUM"
export PYTHONDONTWRITEBYTECODE=1
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider crates/belfry-server/tests/browser "$@"
