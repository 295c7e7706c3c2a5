#!/usr/bin/env bash
# Installs what the test suite needs beyond cargo: Python's aiosmtpd, the real SMTP server the
# e-mail tests run on loopback (crates/belfry-channels/tests/support/smtp_sink.py).
# Idempotent: does nothing when aiosmtpd is already importable.
set -euo pipefail

PYTHON="${PYTHON:-python3}"

if "$PYTHON" -c 'import aiosmtpd' 2>/dev/null; then
    exit 0
fi

# Into the interpreter's own environment first (a virtualenv, pyenv); then the user's site
# directory; a distribution's Python that refuses both (PEP 668) gets the user site anyway.
"$PYTHON" -m pip install --quiet aiosmtpd 2>/dev/null \
    || "$PYTHON" -m pip install --quiet --user aiosmtpd 2>/dev/null \
    || "$PYTHON" -m pip install --quiet --user --break-system-packages aiosmtpd

"$PYTHON" -c 'import aiosmtpd' || {
    echo "test-deps: aiosmtpd is still not importable by $PYTHON" >&2
    exit 1
}
