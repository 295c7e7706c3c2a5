#!/usr/bin/env bash
# Where `belfry serve`'s CPU goes per ping (issue 12, item 8): each of the server's threads (by
# name, from /proc: utime + stime) and wrk's own, divided by the pings answered, for one
# `belfry` binary. A fresh SQLite state directory, 1,000 jobs made by a first ping each, WARM
# seconds (30) of load at 64 connections untimed (the store grows as in bench-pings.sh), then
# SECS seconds (8) measured. A thread busy the whole time at R pings/s uses 1e6/R µs a ping.
#
# Then the sizes of the write-ahead log and the database.
#
#   scripts/bench-ping-threads.sh target/release/belfry
set -euo pipefail
bin=$1
SECS=${SECS:-8}
WARM=${WARM:-30}
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
d=$(mktemp -d)
port=$((30000 + RANDOM % 10000))
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$d"' EXIT
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
ticks=$(getconf CLK_TCK)
# CPU ticks by thread name, summed over the threads of one name.
snap() {
  for t in /proc/"$pid"/task/*; do
    echo "$(cat "$t/comm") $(awk '{print $14 + $15}' "$t/stat")"
  done | awk '{a[$1] += $2} END {for (k in a) print k, a[k]}' | sort
}
wrk -t2 -c64 -d"${WARM}s" -s "$d/p.lua" "http://127.0.0.1:$port" >/dev/null
snap >"$d/a"
/usr/bin/time -f "%U %S" wrk -t2 -c64 -d"${SECS}s" -s "$d/p.lua" "http://127.0.0.1:$port" \
  >"$d/out" 2>"$d/wrk-cpu"
snap >"$d/b"
reqs=$(grep -Eo '^ *[0-9]+ requests' "$d/out" | grep -Eo '[0-9]+')
grep Requests/sec "$d/out"
join "$d/a" "$d/b" | awk -v n="$reqs" -v t="$ticks" \
  '$3 > $2 {printf "%-16s %6.1f µs a ping\n", $1, ($3 - $2) * 1e6 / t / n}'
awk -v n="$reqs" '{printf "%-16s %6.1f µs a ping\n", "wrk", ($1 + $2) * 1e6 / n}' "$d/wrk-cpu"
# The write-ahead log's file: it grows to what the writer's backstop checkpoint allows.
echo "write-ahead log $(($(stat -c %s "$d/home/belfry.db-wal") / 1048576)) MiB, database $(($(stat -c %s "$d/home/belfry.db") / 1048576)) MiB"
