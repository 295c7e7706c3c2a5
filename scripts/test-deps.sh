#!/usr/bin/env bash
# Installs what the test suite needs beyond cargo, each only when it is missing:
# - Python's aiosmtpd, the real SMTP server the e-mail tests run on loopback
#   (crates/belfry-channels/tests/support/smtp_sink.py), into the interpreter;
# - the healthchecks-io client from PyPI, which the server's client tests drive
#   (crates/belfry-server/tests/clients/), into its own virtual environment,
#   target/clients-venv, since it pins versions of its dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import aiosmtpd' 2>/dev/null; then
    # Into the interpreter's own environment first (a virtualenv, pyenv); then the user's
    # site directory; a distribution's Python that refuses both (PEP 668) gets the user site
    # anyway.
    "$PYTHON" -m pip install --quiet aiosmtpd 2>/dev/null \
        || "$PYTHON" -m pip install --quiet --user aiosmtpd 2>/dev/null \
        || "$PYTHON" -m pip install --quiet --user --break-system-packages aiosmtpd
    "$PYTHON" -c 'import aiosmtpd' || {
        echo "test-deps: aiosmtpd is still not importable by $PYTHON" >&2
        exit 1
    }
fi

VENV=target/clients-venv
if ! "$VENV/bin/python" -c 'import healthchecks_io' 2>/dev/null; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check 'healthchecks-io==0.4.4'
    "$VENV/bin/python" -c 'import healthchecks_io' || {
        echo "test-deps: the healthchecks-io client is still not importable in $VENV" >&2
        exit 1
    }
fi
