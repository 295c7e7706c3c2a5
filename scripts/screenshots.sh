#!/usr/bin/env bash
# Refreshes the dashboard's screenshots in docs/screenshots/ (the README shows some): runs the
# browser tests (test-browser.sh), which save each page there as they go. The pages show
# the made-up jobs the tests create; times in them are those of the run.
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p docs/screenshots
BELFRY_SCREENSHOTS="$PWD/docs/screenshots" exec scripts/test-browser.sh "$@"
