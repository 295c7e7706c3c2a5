#!/usr/bin/env bash
# Benchmarks `belfry send -b hi json://127.0.0.1:PORT/` against Apprise's CLI sending the same
# to the same loopback receiver, side by side in one hyperfine run, and prints the ratio of
# the medians. Figures go to BENCHMARKS.md by hand, with the machine they came from.
#
#   scripts/bench-send.sh      # needs hyperfine (apt-get install hyperfine) and apprise
#                              # (pip install apprise); RUNS=… to change the count (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
command -v apprise >/dev/null || { echo "needs apprise (pip install apprise)" >&2; exit 2; }
# Apprise's own script, not a pyenv shim in front of it (a shell script that would add its
# start-up to Apprise's); APPRISE=… to choose another.
APPRISE=${APPRISE:-$(pyenv which apprise 2>/dev/null || command -v apprise)}

cargo build -q --release -p belfry-cli -p belfry-testkit
B="$PWD/target/release/belfry"
RX="$PWD/target/release/belfry-receiver"
work=$(mktemp -d)
trap 'kill $rx_pid 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
runs=${RUNS:-60}

"$RX" > rx.log &
rx_pid=$!
for _ in $(seq 50); do grep -q listening rx.log 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^listening on http:\/\///p' rx.log)
url="json://$addr/"

# Neither tool finds a configuration of its own: both send to the URL given, nothing else.
export BELFRY_HOME="$work/home" XDG_CONFIG_HOME="$work/xdg" HOME="$work"
unset BELFRY_CONFIG BELFRY_URLS

echo "== $("$APPRISE" --version | head -1) ($APPRISE); $("$B" --version)"
echo "== receiver on $addr"
hyperfine -N --warmup 5 --runs "$runs" --export-json send.json \
  "$B send -b hi $url" \
  "$APPRISE -b hi $url"
posts=$(grep -c '^POST / ' rx.log || true)
echo "posts received: $posts (expected $(( 2 * (runs + 5) )))"

python3 - <<'PY'
import json, statistics
r = json.load(open("send.json"))["results"]
med = [statistics.median(x["times"]) * 1e3 for x in r]
low = [min(x["times"]) * 1e3 for x in r]
cpu = [(x["user"] + x["system"]) * 1e3 for x in r]
for name, i in (("belfry send", 0), ("apprise", 1)):
    print(f"{name:12} median {med[i]:8.2f} ms, min {low[i]:8.2f} ms, CPU (user+sys, mean) {cpu[i]:7.2f} ms")
print(f"apprise / belfry: medians {med[1] / med[0]:.0f}x, minimums {low[1] / low[0]:.0f}x, CPU {cpu[1] / cpu[0]:.0f}x")
PY
