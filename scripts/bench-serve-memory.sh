#!/usr/bin/env bash
# Peak memory of `belfry serve` watching many scheduled jobs (issue 12, item 8).
#
# JOBS (100,000) scheduled jobs (period PERIOD, 10s, grace 1s) written into belfry.toml as
# `[jobs.job-N]` entries, or with JOBS_FROM=api created through the management API once the
# server is up (`POST /api/v3/checks/`, so that the figure is not belfry.toml's parsing),
# one release `belfry serve` on a fresh SQLite state directory
# (or BELFRY_STORE=postgres://…?schema=… of its own), every job pinged once by curl (16 in
# parallel), then WAIT seconds (30) so that the sweeper marks them late and records their alerts
# (channel `none`, file:///dev/null). Prints the server's peak RSS (VmHWM of
# /proc/<pid>/status) after start-up, after the pings and at the end, and the late alerts it
# counted (/metrics).
#
#   scripts/bench-serve-memory.sh     # BELFRY=path/to/belfry skips the release build
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-100000}
PERIOD=${PERIOD:-10s}
JOBS_FROM=${JOBS_FROM:-toml}
WAIT=${WAIT:-30}
. scripts/serve-bench.sh
key=bench-key
{
  printf '[server]\nlisten = "127.0.0.1:%s"\nping_key = "%s"\n' "$port" "$key"
  printf 'api_key = "bench-api-key"\napi_rate_limit = 1000000\n\n'
  printf '[channels.none]\nurl = "file:///dev/null"\n\n'
  if [ "$JOBS_FROM" = toml ]; then
    for i in $(seq "$JOBS"); do
      printf '[jobs.job-%s]\nperiod = "%s"\ngrace = "1s"\n' "$i" "$PERIOD"
    done
  fi
} >"$work/belfry.toml"
hwm() { awk '/^VmHWM:/ {printf "%.1f MiB", $2 / 1024}' "/proc/$server/status"; }
started=$(date +%s.%N)
serve
ready=$(date +%s.%N)
echo "belfry serve ($("$BELFRY" --version)), store ${BELFRY_STORE:+PostgreSQL}${BELFRY_STORE:-SQLite}, $JOBS scheduled jobs"
printf 'ready after %.1f s; peak RSS %s\n' "$(echo "$ready - $started" | bc)" "$(hwm)"
if [ "$JOBS_FROM" = api ]; then
  seconds=$(sed -E 's/s$//; s/m$/*60/; s/h$/*3600/; s/d$/*86400/' <<<"$PERIOD" | bc)
  for i in $(seq "$JOBS"); do
    # Each request its own header and body: `next` between them (options are shared else).
    [ "$i" = 1 ] || echo next
    printf 'url = "http://127.0.0.1:%s/api/v3/checks/"\noutput = "/dev/null"\nfail\n' "$port"
    printf 'header = "X-Api-Key: bench-api-key"\n'
    printf 'data = "{\\"slug\\": \\"job-%s\\", \\"timeout\\": %s, \\"grace\\": 1}"\n' "$i" "$seconds"
  done | curl -fsS --no-progress-meter --parallel --parallel-max 16 -K -
  made=$(date +%s.%N)
  printf 'created by the API in %.1f s; peak RSS %s\n' "$(echo "$made - $ready" | bc)" "$(hwm)"
  ready=$made
fi
for i in $(seq "$JOBS"); do
  printf 'url = "http://127.0.0.1:%s/ping/%s/job-%s"\noutput = "/dev/null"\n' "$port" "$key" "$i"
done | curl -fsS --no-progress-meter --parallel --parallel-max 16 -K -
pinged=$(date +%s.%N)
printf 'pinged all in %.1f s; peak RSS %s\n' "$(echo "$pinged - $ready" | bc)" "$(hwm)"
sleep "$WAIT"
metrics=$(curl -fsS "http://127.0.0.1:$port/metrics")
printf 'after %s s more; peak RSS %s, current %s\n' "$WAIT" "$(hwm)" \
  "$(awk '/^VmRSS:/ {printf "%.1f MiB", $2 / 1024}' "/proc/$server/status")"
grep -E '^belfry_(pings_total|alerts|late)' <<<"$metrics" || true
