#!/usr/bin/env bash
# The whole test suite, as CI runs it: what the tests need beyond cargo (test-deps.sh), the
# Rust workspace's tests, then the Python package's (test-python.sh builds its wheel into a
# virtual environment and runs pytest), then the dashboard's in headless Chromium
# (test-browser.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-deps.sh
cargo test --workspace --locked
scripts/test-python.sh
scripts/test-browser.sh
