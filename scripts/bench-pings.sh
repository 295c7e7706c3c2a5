#!/usr/bin/env bash
# Pings per second that `belfry serve` answers on loopback (issue 12, item 8), each ping
# committed to the store before its answer (the server's writer records them in groups).
#
# One release `belfry serve` with a fresh state directory; JOBS jobs (1,000) made by a first
# ping each (`?create=1`), then wrk (Debian's package, installed with apt-get when missing)
# pings them at random by name (`/ping/<key>/job-N`) for SECS seconds (10) at 1 connection and
# at 64 connections, ROUNDS times (3), alternating. Every answer must be `200 OK`: the script
# fails on any other (wrk's "Non-2xx" line).
#
# The store is SQLite (the state directory's belfry.db) unless BELFRY_STORE names a
# `postgres://…` URL, which every belfry process is given; use a schema of its own
# (`?schema=bench_pings`), since the jobs stay there afterwards.
#
#   scripts/bench-pings.sh          # JOBS=1000 SECS=10 ROUNDS=3; BELFRY=path/to/belfry skips
#                                   # the release build
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-1000}
SECS=${SECS:-10}
ROUNDS=${ROUNDS:-3}
. scripts/serve-bench.sh
need_wrk
key=bench-key
cat >"$work/belfry.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
ping_key = "$key"

[channels.none]
url = "file:///dev/null"
EOF
serve

# The jobs, each made by its first ping.
for i in $(seq "$JOBS"); do
  printf 'url = "http://127.0.0.1:%s/ping/%s/job-%s?create=1"\noutput = "/dev/null"\n' \
    "$port" "$key" "$i"
done | curl -fsS --no-progress-meter --parallel --parallel-max 16 -K -
cat >"$work/pings.lua" <<EOF
request = function()
  return wrk.format("GET", "/ping/$key/job-" .. math.random($JOBS))
end
EOF

store=${BELFRY_STORE:+PostgreSQL}
echo "belfry serve ($("$BELFRY" --version)), store ${store:-SQLite}, $JOBS jobs, ${SECS}s a round"
printf '%-6s %-12s %12s %12s\n' round connections 'pings/s' 'latency p50'
for round in $(seq "$ROUNDS"); do
  for conns in 1 64; do
    threads=$((conns < 2 ? 1 : 2))
    out=$(wrk -t"$threads" -c"$conns" -d"${SECS}s" --latency -s "$work/pings.lua" \
      "http://127.0.0.1:$port")
    if grep -q "Non-2xx" <<<"$out"; then
      echo "answers other than 200 OK:" >&2
      echo "$out" >&2
      exit 1
    fi
    rate=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    printf '%-6s %-12s %12s %12s\n' "$round" "$conns" "$rate" "$p50"
  done
done
pings=$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^belfry_pings_total\{kind="success"\}/ {print $2}')
echo "the server counted $pings successful pings"
