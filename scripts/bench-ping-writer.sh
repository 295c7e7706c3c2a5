#!/usr/bin/env bash
# Pings per second and the ping writer's CPU per ping, for builds side by side (issue 12,
# item 8): for each `belfry` binary given, in the order given, a fresh SQLite state directory,
# 1,000 jobs made by a first ping each, then wrk (Debian's package) at 64 connections for SECS
# seconds (8). The writer thread's CPU comes from /proc (utime + stime of `belfry-writer`),
# which moves less with a noisy machine than pings/s do; the log's size at the end is printed.
#
#   scripts/bench-ping-writer.sh old/belfry new/belfry old/belfry new/belfry
set -euo pipefail
SECS=${SECS:-8}
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
for bin in "$@"; do
  d=$(mktemp -d)
  port=$((30000 + RANDOM % 10000))
  printf '[server]\nlisten = "127.0.0.1:%s"\nping_key = "k"\n[channels.none]\nurl = "file:///dev/null"\n' \
    "$port" >"$d/belfry.toml"
  BELFRY_HOME=$d/home BELFRY_CONFIG=$d/belfry.toml "$bin" serve 2>"$d/log" &
  pid=$!
  for _ in $(seq 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
    sleep 0.1
  done
  for i in $(seq 1000); do
    printf 'url = "http://127.0.0.1:%s/ping/k/job-%s?create=1"\noutput = "/dev/null"\n' "$port" "$i"
  done | curl -fsS --no-progress-meter --parallel --parallel-max 16 -K -
  printf 'request = function()\n  return wrk.format("GET", "/ping/k/job-" .. math.random(1000))\nend\n' \
    >"$d/p.lua"
  tid=$(grep -l belfry-writer /proc/"$pid"/task/*/comm | head -1 | xargs dirname | xargs basename)
  cpu() { awk '{print $14 + $15}' "/proc/$pid/task/$tid/stat"; }
  c0=$(cpu)
  out=$(wrk -t2 -c64 -d"${SECS}s" -s "$d/p.lua" "http://127.0.0.1:$port")
  c1=$(cpu)
  reqs=$(grep -Eo '^ *[0-9]+ requests' <<<"$out" | grep -Eo '[0-9]+')
  rps=$(grep Requests/sec <<<"$out" | awk '{print $2}')
  ticks=$(getconf CLK_TCK)
  wal=$(stat -c %s "$d/home/belfry.db-wal" 2>/dev/null || echo 0)
  echo "$bin: $rps pings/s, writer CPU $(((c1 - c0) * 1000000000 / ticks / reqs)) ns a ping, log $((wal / 1048576)) MiB"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$d"
done
