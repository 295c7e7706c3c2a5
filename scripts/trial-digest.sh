#!/usr/bin/env bash
# Digest counts under concurrency (issue 10, item 6). Each trial runs RUNS runs of one job,
# FAILS of them failing, in random order through `xargs -P P`, then one closing OK run (so
# that failures the rules held back at the end are told by its recovery), against a real
# receiver (belfry-receiver, a json:// channel) with the default rules and digest window;
# then `belfry deliver` until nothing is pending. Over all the messages the receiver got, the
# problems counted (each message's digest, or the message itself without one) must equal
# FAILS. Prints one line per trial (with the sends that may have been duplicates: a sender's
# lease ran out) and a summary; exits 1 if any trial miscounted.
#
#   scripts/trial-digest.sh                      # TRIALS=5 RUNS=200 FAILS=66 PAR="16 64"
#   PROFILE=debug TRIALS=3 scripts/trial-digest.sh
#   BELFRY=/tmp/belfry-old scripts/trial-digest.sh   # another build of belfry
#   WINDOW=0s scripts/trial-digest.sh                # no digest window: many more messages
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
TRIALS=${TRIALS:-5}
RUNS=${RUNS:-200}
FAILS=${FAILS:-66}
PAR=${PAR:-16 64}
flag=()
[ "$PROFILE" = release ] && flag=(--release)
if [ -n "${BELFRY:-}" ]; then
  cargo build -q --locked "${flag[@]}" -p belfry-testkit
else
  cargo build -q --locked "${flag[@]}" -p belfry-cli -p belfry-testkit
  BELFRY=$PWD/target/$PROFILE/belfry
fi
RECEIVER=$PWD/target/$PROFILE/belfry-receiver

work=$(mktemp -d)
rx_pid=
cleanup() {
  [ -n "$rx_pid" ] && kill "$rx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# One trial: $1 = parallelism, $2 = trial number. Prints "counted problems".
trial() {
  local p=$1 t=$2 dir=$work/p$1-t$2
  mkdir -p "$dir"
  "$RECEIVER" >"$dir/rx.log" &
  rx_pid=$!
  local addr=
  for _ in $(seq 100); do
    addr=$(sed -n 's|^listening on http://||p' "$dir/rx.log")
    [ -n "$addr" ] && break
    sleep 0.05
  done
  [ -n "$addr" ] || { echo "the receiver did not start" >&2; exit 1; }
  {
    [ -n "${WINDOW:-}" ] && printf '[delivery]\ndigest_window = "%s"\n\n' "$WINDOW"
    printf '[channels.hook]\nurl = "json://%s/belfry"\n' "$addr"
  } >"$dir/belfry.toml"
  export BELFRY_HOME=$dir/home BELFRY_CONFIG=$dir/belfry.toml
  # FAILS ones and RUNS - FAILS zeros, shuffled.
  { seq "$FAILS" | sed 's/.*/1/'; seq "$((RUNS - FAILS))" | sed 's/.*/0/'; } | shuf >"$dir/codes"
  xargs -P "$p" -I{} "$BELFRY" run --quiet --name j -- sh -c 'exit {}' <"$dir/codes" || true
  "$BELFRY" run --quiet --name j -- true
  # Deliver until no row is pending or being sent (the digest window holds rows up to 3 s,
  # and the background drainer may hold leases meanwhile).
  local left=1
  for _ in $(seq 120); do
    "$BELFRY" deliver --wait 10s >/dev/null 2>&1 || true
    left=$("$BELFRY" outbox --json -n 100000 | python3 -c '
import json, sys
print(sum(r["status"] in ("pending", "sending") for r in json.load(sys.stdin)))')
    [ "$left" = 0 ] && break
    sleep 0.5
  done
  [ "$left" = 0 ] || { echo "rows still undelivered after 60 s" >&2; exit 1; }
  local dups
  dups=$("$BELFRY" outbox --all --json -n 100000 | python3 -c '
import json, sys
print(sum(r.get("possible_duplicates", 0) for r in json.load(sys.stdin)))')
  # Let the last request be logged, then stop the receiver.
  sleep 0.3
  kill "$rx_pid"
  wait "$rx_pid" 2>/dev/null || true
  rx_pid=
  python3 - "$dir/rx.log" <<'PY'
import json, sys
problems = {"failed", "timed_out", "crashed", "late"}
counted = messages = 0
for line in open(sys.argv[1]):
    if not line.startswith("POST "):
        continue
    n = json.loads(line.split(" ", 2)[2])
    messages += 1
    d = n.get("digest")
    if d and d.get("states"):
        counted += sum(c["count"] for c in d["states"] if c["state"] in problems)
    elif n["state"] in problems:
        counted += d["count"] if d else 1
print(counted, messages)
PY
  echo "$dups"
}

bad_total=0
for p in $PAR; do
  bad=0
  for t in $(seq "$TRIALS"); do
    trial "$p" "$t" >"$work/result"
    { read -r counted messages; read -r dups; } <"$work/result"
    verdict=ok
    if [ "$counted" != "$FAILS" ]; then verdict=MISMATCH; bad=$((bad + 1)); fi
    echo "-P $p trial $t: $FAILS failures run, $counted counted in $messages messages" \
      "($dups possible duplicates): $verdict"
  done
  echo "-P $p: $bad of $TRIALS trials miscounted"
  bad_total=$((bad_total + bad))
done
[ "$bad_total" = 0 ]
