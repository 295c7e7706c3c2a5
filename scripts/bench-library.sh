#!/usr/bin/env bash
# Benchmarks of the Rust library (issue 5), with the Python yardsticks in the same run:
#   1. criterion: a watched function returning Ok against the same function bare; an ERROR
#      event through the tracing layer against the same event without it;
#   2. the storm: 1,000,000 ERROR events with and without belfry's layer, interleaved rounds,
#      checking that the digests' counts add up to 1,000,000 (crates/belfry/benches/storm.rs);
#   3. Python: a status-file decorator and http-logging's AsyncHttpHandler, per call
#      (scripts/bench-library-python.py), in a virtualenv this script makes (Python 3.10:
#      http-logging 2.0 does not import on 3.11 and later).
#
#   scripts/bench-library.sh            # STORM_ROUNDS=5 by default
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== criterion: watched function and tracing layer"
cargo bench -q -p belfry --bench hot_path 2>&1 | grep -E '^[a-z_]+/|time:'

echo "== storm"
STORM_ROUNDS=${STORM_ROUNDS:-5} cargo bench -q -p belfry --bench storm

echo "== Python yardsticks"
cargo build -q --release -p belfry-testkit
work=$(mktemp -d)
rx_pid=
trap '[ -n "$rx_pid" ] && kill "$rx_pid" 2>/dev/null; rm -rf "$work"' EXIT
# The first Python that runs (pyenv shims may exist without a version behind them).
py=${PYTHON:-}
if [ -z "$py" ]; then
  for c in python3.10 python3; do
    if "$c" -c 'import sys' 2>/dev/null; then py=$c; break; fi
  done
fi
"$py" -m venv "$work/venv"
"$work/venv/bin/pip" install -q http-logging
./target/release/belfry-receiver > "$work/rx.log" &
rx_pid=$!
for _ in $(seq 50); do grep -q listening "$work/rx.log" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^listening on http:\/\///p' "$work/rx.log")
"$work/venv/bin/python" scripts/bench-library-python.py "http://$addr/logs"
