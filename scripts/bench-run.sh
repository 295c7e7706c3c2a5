#!/usr/bin/env bash
# Benchmarks `belfry run` against the bare command, side by side (hyperfine), and its peak
# memory. Figures go to BENCHMARKS.md by hand, with the machine they came from.
#
#   scripts/bench-run.sh            # needs hyperfine and GNU time (Debian: hyperfine, time)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 2; }

cargo build -q --release -p belfry-cli -p belfry-testkit
B="$PWD/target/release/belfry"
RX="$PWD/target/release/belfry-receiver"
work=$(mktemp -d)
trap 'kill $rx_pid 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
runs=${RUNS:-500}

echo "== belfry run -- true, no channel configured (the console; no alert after the first run)"
export BELFRY_HOME="$work/home-none"
"$B" run -q --name bench -- true
hyperfine -N --warmup 30 --runs "$runs" --export-json none.json 'true' "$B run --name bench -- true"

echo "== belfry run -- true, one JSON webhook on loopback, a notification delivered every run"
"$RX" > rx.log &
rx_pid=$!
for _ in $(seq 50); do grep -q listening rx.log 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^listening on http:\/\///p' rx.log)
cat > hook.toml <<TOML
[policy]
ok_heartbeat_after = "0s"   # every OK run notifies: each run below delivers one webhook
[delivery]
digest_window = "0s"        # and none is held back to be folded into a digest
[channels.hook]
url = "json://$addr/belfry"
TOML
export BELFRY_HOME="$work/home-hook" BELFRY_CONFIG="$work/hook.toml"
"$B" run --name bench -- true
hyperfine -N --warmup 30 --runs "$runs" --export-json hook.json 'true' "$B run --name bench -- true"
delivered=$(grep -c '^POST /belfry' rx.log)
echo "webhook deliveries received: $delivered"

echo "== medians"
python3 - <<'PY'
import json, statistics
for name in ("none", "hook"):
    r = json.load(open(f"{name}.json"))["results"]
    m = [statistics.median(x["times"]) * 1e3 for x in r]
    print(f"{name}: true {m[0]:.2f} ms, belfry run {m[1]:.2f} ms, added {m[1]-m[0]:.2f} ms (median)")
PY

echo "== peak RSS of belfry run -- true (KiB), 20 runs, no channel then webhook"
unset BELFRY_CONFIG
for home in home-none home-hook; do
  [ "$home" = home-hook ] && export BELFRY_CONFIG="$work/hook.toml"
  export BELFRY_HOME="$work/$home"
  for _ in $(seq 20); do
    /usr/bin/time -f '%M' "$B" run -q --name bench -- true 2>&1 >/dev/null | tail -1
  done | sort -n | awk -v h="$home" '{a[NR]=$1} END {print h": median " a[int((NR+1)/2)] " KiB, max " a[NR] " KiB"}'
done
