#!/usr/bin/env bash
# How long `belfry serve` takes to make the dashboard's jobs page for 10,000 jobs (issue 13,
# item 6: at most 100 ms), measured from a client on loopback (curl's time to the last byte).
#
# One release `belfry serve` with a fresh SQLite state directory; JOBS jobs (10,000) made by
# a first ping each (`?create=1`), every job with a schedule through belfry.toml's absence (the
# pings alone) and RUNS finished runs each on average (30: enough for every strip), made by
# wrk pinging them at random; every FAIL-th job (100) fails its last ping, so problems sort
# first. Then each page is fetched N times (30) with the read-write API key as a bearer token,
# and the median and the slowest are printed: the first page (problems first), a page deep in
# the list, a text search, and the live part the script fetches every few seconds.
#
#   scripts/bench-dashboard.sh        # JOBS=10000 RUNS=30 FAIL=100 N=30; BELFRY=path/to/belfry
#                                     # skips the release build
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-10000}
RUNS=${RUNS:-30}
FAIL=${FAIL:-100}
N=${N:-30}
. scripts/serve-bench.sh
need_wrk
key=bench-key
api=bench-api-key-0123456789
cat >"$work/belfry.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
ping_key = "$key"
api_key = "$api"

[channels.none]
url = "file:///dev/null"
EOF
serve

for i in $(seq "$JOBS"); do
  printf 'url = "http://127.0.0.1:%s/ping/%s/job-%05d?create=1"\noutput = "/dev/null"\n' \
    "$port" "$key" "$i"
done | curl -fsS --no-progress-meter --parallel --parallel-max 16 -K -
cat >"$work/pings.lua" <<EOF
request = function()
  return wrk.format("GET", string.format("/ping/$key/job-%05d", math.random($JOBS)))
end
EOF
total=$((JOBS * RUNS))
echo "making about $total runs" >&2
# wrk runs for a time, not a count: long enough at the writer's rate for the runs asked.
wrk -t2 -c64 -d"$(( total / 8000 + 2 ))s" -s "$work/pings.lua" "http://127.0.0.1:$port" >/dev/null
for i in $(seq "$FAIL" "$FAIL" "$JOBS"); do
  printf 'url = "http://127.0.0.1:%s/ping/%s/job-%05d/fail"\noutput = "/dev/null"\n' \
    "$port" "$key" "$i"
done | curl -fsS --no-progress-meter --parallel --parallel-max 16 -K -

runs=$(sqlite3 "$work/home/belfry.db" 'SELECT COUNT(*) FROM runs' 2>/dev/null || echo '?')
echo "belfry serve ($("$BELFRY" --version)), SQLite, $JOBS jobs, $runs runs, $N fetches each"
printf '%-34s %10s %10s %10s\n' page 'median ms' 'max ms' 'bytes'
measure() {
  local label=$1 path=$2
  shift 2
  local times=() bytes=0
  for _ in $(seq "$N"); do
    out=$(curl -fsS -o "$work/page" -w '%{time_total} %{size_download}' \
      -H "Authorization: Bearer $api" "$@" "http://127.0.0.1:$port$path")
    times+=("${out% *}")
    bytes=${out#* }
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v label="$label" -v bytes="$bytes" '
    { t[NR] = $1 * 1000 }
    END { printf "%-34s %10.1f %10.1f %10d\n", label, t[int((NR + 1) / 2)], t[NR], bytes }'
}
measure "jobs, first page" "/"
measure "jobs, page 100" "/?page=100"
measure "jobs, search \"job-099\"" "/?q=job-099"
measure "jobs, live part" "/" -H "X-Belfry-Live: 1"
measure "one job" "/job?name=job-00100"
