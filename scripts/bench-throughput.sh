#!/usr/bin/env bash
# Durable deliveries to a loopback webhook, belfry against Prometheus Alertmanager, side by side
# in one run (issue 11, item 5). N alerts (20,000) for N distinct jobs, one webhook request each:
#
# - Alertmanager (Debian's `prometheus-alertmanager`, installed with apt-get when missing), fresh
#   for each round, routing every alert to its own notification (`group_by: ['...']`,
#   `group_wait: 0s`) to one webhook on loopback; the N alerts are posted to its API in batches
#   on one kept-alive connection. Timed from the first post to the Nth webhook received; CPU is
#   the Alertmanager process's, over the same window.
# - belfry: N first-run failures of N jobs (`belfry run --name JOB -- false` with delivery off,
#   as a failing cron job makes them: a notification and an outbox row each, fsynced), then one
#   `belfry deliver` to a `json://` channel on the same receiver. Timed from the start of the
#   `belfry deliver` process to the Nth webhook received; CPU is that process's (user + system,
#   from /usr/bin/time), so start-up, opening the store and recording every outcome count.
#
# The receiver is belfry-counter (crates/belfry-testkit): it only counts, and stamps the time of
# the latest request, so that it costs both senders the same and neither is charged for it.
# Rounds alternate Alertmanager and belfry; the ratio is taken per round and its median printed.
#
# The store is SQLite by default: the N alerts are recorded once into a template state
# directory that each round copies, so every round delivers from an identical store. With
# BELFRY_STORE set (a `postgres://…` URL, once that backend exists), it is passed on to every
# belfry process and each round records its own N alerts (jobs named after the round) into that
# database before delivering them; the database keeps them afterwards.
#
#   scripts/bench-throughput.sh     # N=20000 ROUNDS=3 BATCH=500; BELFRY=path/to/belfry and
#                                   # COUNTER=path/to/belfry-counter skip the release build
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
ROUNDS=${ROUNDS:-3}
BATCH=${BATCH:-500}
PY=${PYTHON:-python3}
if ! command -v prometheus-alertmanager >/dev/null; then
  echo "installing Debian's prometheus-alertmanager" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus-alertmanager >/dev/null
fi
target=${CARGO_TARGET_DIR:-$PWD/target}
if [ -z "${BELFRY:-}" ]; then
  cargo build -q --release -p belfry-cli
  BELFRY="$target/release/belfry"
fi
if [ -z "${COUNTER:-}" ]; then
  cargo build -q --release -p belfry-testkit --bin belfry-counter
  COUNTER="$target/release/belfry-counter"
fi

work=$(mktemp -d)
counter_pid=
am_pid=
stop_am() {
  if [ -n "$am_pid" ]; then
    kill "$am_pid" 2>/dev/null || true
    wait "$am_pid" 2>/dev/null || true
    am_pid=
  fi
}
cleanup() {
  stop_am
  if [ -n "$counter_pid" ]; then
    kill "$counter_pid" 2>/dev/null || true
    wait "$counter_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkfifo "$work/addr"
"$COUNTER" > "$work/addr" &
counter_pid=$!
read -r _ _ hook < "$work/addr"
hook=${hook#http://}

# A loopback port nobody listens on now, for Alertmanager's API.
free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
cat > "$work/am.yml" <<EOF
route:
  receiver: hook
  group_by: ['...']
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 12h
receivers:
  - name: hook
    webhook_configs:
      - url: http://$hook/alertmanager
        send_resolved: false
EOF

# Posts N alerts to Alertmanager in batches on one connection, then waits for the Nth webhook;
# prints the seconds from the first post to it, and Alertmanager's CPU ticks over that time.
cat > "$work/am_round.py" <<'PY'
import http.client, json, sys, time
am_port, hook, n, batch, pid, tag = sys.argv[1:7]
n, batch = int(n), int(batch)
def cpu():
    f = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
def count():
    c = http.client.HTTPConnection(hook)
    c.request("GET", "/count")
    r = json.loads(c.getresponse().read())
    c.close()
    return r["count"], r["last_ns"]
bodies = [
    json.dumps([
        {"labels": {"alertname": "JobFailed", "job": "%s-job-%d" % (tag, i), "severity": "page"},
         "annotations": {"summary": "job %s-job-%d failed (exit 1)" % (tag, i)}}
        for i in range(lo, min(lo + batch, n))
    ]).encode()
    for lo in range(0, n, batch)
]
before, _ = count()
api = http.client.HTTPConnection("127.0.0.1", int(am_port))
cpu0, t0 = cpu(), time.time_ns()
for b in bodies:
    api.request("POST", "/api/v2/alerts", b, {"Content-Type": "application/json"})
    r = api.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("Alertmanager answered %d to a batch of alerts" % r.status)
deadline = time.monotonic() + 600
while True:
    got, last_ns = count()
    if got - before >= n:
        break
    if time.monotonic() > deadline:
        sys.exit("Alertmanager sent %d of %d webhooks in 600 s" % (got - before, n))
    time.sleep(0.005)
print((last_ns - t0) / 1e9, cpu() - cpu0, got - before)
PY

am_round() {
  local r=$1 port
  port=$(free_port)
  mkdir "$work/am$r"
  prometheus-alertmanager --config.file="$work/am.yml" --storage.path="$work/am$r" \
    --web.listen-address="127.0.0.1:$port" --cluster.listen-address= --log.level=warn \
    2> "$work/am$r.log" &
  am_pid=$!
  local i
  for i in $(seq 1 500); do
    curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && break
    kill -0 "$am_pid" 2>/dev/null || { cat "$work/am$r.log" >&2; exit 1; }
    [ "$i" -lt 500 ] || { echo "Alertmanager not ready on port $port after 10 s" >&2; exit 1; }
    sleep 0.02
  done
  "$PY" "$work/am_round.py" "$port" "$hook" "$N" "$BATCH" "$am_pid" "r$r" > "$work/am$r.out"
  stop_am
}

cat > "$work/belfry.toml" <<EOF
[channels.hook]
url = "json://$hook/belfry"
states = ["problem"]

[delivery]
wait = "0s"
background = false
digest_window = "0s"
EOF
# No configuration of the user's is read: only this one.
export BELFRY_BACKGROUND=0 HOME="$work" XDG_CONFIG_HOME="$work" BELFRY_CONFIG="$work/belfry.toml"

# Records N first-run failures into the state directory $1, jobs named $2-job-I, several at a
# time (each one mostly waits for its fsync).
record() {
  seq 1 "$N" | BELFRY_HOME="$1" xargs -P "$(( $(nproc) * 4 ))" -I{} \
    "$BELFRY" run -q --name "$2-job-{}" -- false 2>/dev/null || true
}
count() { curl -sf "http://$hook/count" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["count"])'; }

belfry_round() {
  local r=$1 home="$work/belfry$r" before t0 last_ns
  if [ -n "${BELFRY_STORE:-}" ]; then
    record "$home" "r$r"
  else
    cp -a "$work/template" "$home"
  fi
  before=$(count)
  t0=$(date +%s%N)
  BELFRY_HOME="$home" /usr/bin/time -o "$work/belfry$r.time" -f "%e %U %S" \
    "$BELFRY" deliver --wait 600s > /dev/null
  last_ns=$(curl -sf "http://$hook/count" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["last_ns"])')
  local got=$(( $(count) - before ))
  [ "$got" -eq "$N" ] || { echo "belfry deliver sent $got webhooks, not $N" >&2; exit 1; }
  echo "$(( last_ns - t0 )) $(cat "$work/belfry$r.time")" > "$work/belfry$r.out"
  rm -rf "$home"
}

echo "store: ${BELFRY_STORE:-SQLite (a fresh copy of one recorded state directory each round)}"
echo "$(prometheus-alertmanager --version 2>&1 | head -1); belfry at $(git rev-parse --short HEAD 2>/dev/null || echo "?")"
if [ -z "${BELFRY_STORE:-}" ]; then
  echo "recording $N failing runs of $N jobs for belfry (once) …"
  t=$(date +%s)
  record "$work/template" r0
  echo "recorded in $(( $(date +%s) - t )) s"
fi
# The receiver's CPU time so far, in clock ticks (all its threads).
counter_cpu() { awk '{ print $14 + $15 }' "/proc/$counter_pid/stat"; }
counter0=$(counter_cpu)
for r in $(seq 1 "$ROUNDS"); do
  am_round "$r"
  belfry_round "$r"
  echo "round $r: Alertmanager $(cat "$work/am$r.out"), belfry $(cat "$work/belfry$r.out")" \
    >> "$work/raw"
done

"$PY" - "$work" "$ROUNDS" "$N" "$(getconf CLK_TCK)" "$(( $(counter_cpu) - counter0 ))" <<'PY'
import statistics as st, sys
work, rounds, n, tick = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows, split = [], []
print("| round | Alertmanager deliveries/s | its CPU µs/delivery | belfry deliveries/s "
      "| its CPU µs/delivery | belfry ÷ Alertmanager |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for r in range(1, rounds + 1):
    am_secs, am_ticks, _ = open("%s/am%d.out" % (work, r)).read().split()
    b_ns, _, b_user, b_sys = open("%s/belfry%d.out" % (work, r)).read().split()
    am = n / float(am_secs)
    am_cpu = int(am_ticks) / tick / n * 1e6
    b = n / (int(b_ns) / 1e9)
    b_cpu = (float(b_user) + float(b_sys)) / n * 1e6
    rows.append((am, am_cpu, b, b_cpu, b / am))
    split.append((float(b_user) / n * 1e6, float(b_sys) / n * 1e6))
    print("| %d | %.0f | %.0f | %.0f | %.0f | %.2f× |" % ((r,) + rows[-1]))
med = [st.median(col) for col in zip(*rows)]
print("| median | %.0f | %.0f | %.0f | %.0f | %.2f× |" % tuple(med))
print("belfry's CPU a delivery (median): user %.0f µs, system %.0f µs" % tuple(
    st.median(col) for col in zip(*split)))
print("the receiver's CPU a request, both senders: %.1f µs" % (
    int(sys.argv[5]) / tick / (2 * rounds * n) * 1e6))
PY
