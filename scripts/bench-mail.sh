#!/usr/bin/env bash
# E-mail throughput and latency against one SMTP server on loopback, side by side in one run:
#
# - `belfry deliver` draining N pending e-mail rows (N first-run failures of N jobs, recorded
#   by `belfry run` with delivery off), timed as a whole process: start, configuration, store,
#   every mail, every outcome recorded, QUIT;
# - Python's smtplib sending the same number of mails on one connection (the bytes of the last
#   mail belfry delivered, so both put the same message on the wire), timed from connect to QUIT inside
#   one Python process (no interpreter start-up counted);
# - the wall time of one `belfry send mailto://…` (hyperfine).
#
# The server stores nothing and parses nothing (it counts), so that it costs both the same.
# SERVER=rust (the default) is belfry-smtp-sink (crates/belfry-testkit), which costs
# 0.04-0.07 ms of CPU a mail, so that the figures are the clients'; SERVER=aiosmtpd is one
# aiosmtpd process, which costs 0.5-0.9 ms of CPU a mail and caps both clients at its rate.
# Rounds alternate the two clients, and the ratio is taken per round.
#
#   scripts/bench-mail.sh        # N=1000 ROUNDS=3 RUNS=30 SERVER=rust; needs hyperfine, and
#                                # aiosmtpd for SERVER=aiosmtpd (scripts/test-deps.sh);
#                                # BELFRY=path/to/belfry and SINK=path/to/belfry-smtp-sink
#                                # skip the release build
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
N=${N:-1000}
ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-30}
SERVER=${SERVER:-rust}
case "$SERVER" in
  rust | aiosmtpd) ;;
  *) echo "SERVER is rust or aiosmtpd, not $SERVER" >&2; exit 2 ;;
esac
if [ -z "${BELFRY:-}" ]; then
  cargo build -q --release -p belfry-cli
  BELFRY="$PWD/target/release/belfry"
fi
if [ "$SERVER" = rust ] && [ -z "${SINK:-}" ]; then
  cargo build -q --release -p belfry-testkit --bin belfry-smtp-sink
  SINK="$PWD/target/release/belfry-smtp-sink"
fi
PY=${PYTHON:-python3}
work=$(mktemp -d)
sink_pid=
cleanup() {
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# aiosmtpd: counts mails and keeps the last one's bytes in memory (for smtplib to send),
# answers at once, and writes both out on SIGUSR1; nothing else per mail.
cat > "$work/sink.py" <<'PY'
import asyncio, os, signal, sys
from aiosmtpd.smtp import SMTP

class Count:
    def __init__(self, out):
        self.out, self.n, self.last = out, 0, b""
    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        self.last = envelope.original_content
        return "250 OK"
    def dump(self):
        with open(self.out + "/mail.eml", "wb") as f:
            f.write(self.last)
        with open(self.out + "/count.tmp", "w") as f:
            f.write(str(self.n))
        os.replace(self.out + "/count.tmp", self.out + "/count")

async def main():
    loop = asyncio.get_running_loop()
    handler = Count(sys.argv[1])
    loop.add_signal_handler(signal.SIGUSR1, handler.dump)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="bench.test", loop=loop), "127.0.0.1", 0)
    print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
PY
mkfifo "$work/port"
if [ "$SERVER" = rust ]; then
  # belfry-smtp-sink writes the count and the last mail on each line it reads.
  mkfifo "$work/ctl"
  "$SINK" 0 "$work" < "$work/ctl" > "$work/port" &
  sink_pid=$!
  exec 5> "$work/ctl"
  dump() { echo >&5; }
else
  "$PY" "$work/sink.py" "$work" > "$work/port" &
  sink_pid=$!
  dump() { kill -USR1 "$sink_pid"; }
fi
read -r _ port < "$work/port"
# The server's CPU time so far, in clock ticks (all its threads).
sink_cpu() { awk '{ print $14 + $15 }' "/proc/$sink_pid/stat"; }
count() {
  rm -f "$work/count"
  dump
  while [ ! -e "$work/count" ]; do sleep 0.01; done
  cat "$work/count"
}

url="mailto://127.0.0.1:$port?mode=insecure&to=ops@example.org&from=belfry@example.com"
cat > "$work/belfry.toml" <<EOF
[channels.mail]
url = "$url"
states = ["problem"]

[delivery]
wait = "0s"
background = false
EOF
# No configuration of the user's is read; `belfry send` gets none at all, the rest this one.
export BELFRY_BACKGROUND=0 HOME="$work" XDG_CONFIG_HOME="$work" BELFRY_HOME="$work/send-home"
conf="$work/belfry.toml"

# smtplib: the same mail, N times, one connection.
cat > "$work/smtplib_n.py" <<'PY'
import smtplib, sys, time
port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
mail = open(path, "rb").read()
t, c = time.perf_counter(), time.process_time()
s = smtplib.SMTP("127.0.0.1", port)
s.ehlo()
for _ in range(n):
    s.sendmail("belfry@example.com", ["ops@example.org"], mail)
s.quit()
print(time.perf_counter() - t, time.process_time() - c)
PY

echo "== one \`belfry send mailto://…\` (hyperfine -N, $RUNS runs), server $SERVER"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/send.json" \
  "$BELFRY send -t Backup -b db1-41GB $url" >/dev/null
"$PY" - "$work/send.json" <<'PY'
import json, statistics as st, sys
r = json.load(open(sys.argv[1]))["results"][0]
print("belfry send: median %.2f ms, min %.2f ms, CPU %.2f ms (user %.2f + system %.2f)" % (
    st.median(r["times"]) * 1e3, min(r["times"]) * 1e3, (r["user"] + r["system"]) * 1e3,
    r["user"] * 1e3, r["system"] * 1e3))
PY

echo "== $N mails: belfry deliver (N pending rows) against smtplib on one connection, server $SERVER"
for r in $(seq 1 "$ROUNDS"); do
  home="$work/home$r"
  for i in $(seq 1 "$N"); do
    BELFRY_CONFIG="$conf" BELFRY_HOME="$home" "$BELFRY" run -q --name "job-$i" -- false \
      2>/dev/null || true
  done
  before=$(count)
  sink0=$(sink_cpu)
  BELFRY_CONFIG="$conf" BELFRY_HOME="$home" /usr/bin/time -o "$work/time" -f "%e %U %S" \
    "$BELFRY" deliver --wait 600s >/dev/null
  sink1=$(sink_cpu)
  got=$(( $(count) - before ))
  [ "$got" -eq "$N" ] || { echo "belfry deliver sent $got mails, not $N" >&2; exit 1; }
  s=$("$PY" "$work/smtplib_n.py" "$port" "$N" "$work/mail.eml")
  sink2=$(sink_cpu)
  echo "$r $(cat "$work/time") $((sink1 - sink0)) $s $((sink2 - sink1))" >> "$work/rounds"
done
"$PY" - "$work/rounds" "$N" "$(getconf CLK_TCK)" <<'PY'
import statistics as st, sys
n, tick = int(sys.argv[2]), 1e3 / int(sys.argv[3])
ratios = []
for line in open(sys.argv[1]):
    r, bw, bu, bs, bsink, pw, pc, psink = line.split()
    b, p = n / float(bw), n / float(pw)
    ratios.append(b / p)
    print("round %s: belfry deliver %.0f mails/s (CPU %.2f ms a mail; server %.3f ms), "
          "smtplib %.0f mails/s (CPU %.2f ms a mail; server %.3f ms): %.2fx" % (
              r, b, (float(bu) + float(bs)) * 1e3 / n, int(bsink) * tick / n,
              p, float(pc) * 1e3 / n, int(psink) * tick / n, b / p))
print("median ratio: belfry deliver %.2fx smtplib on one connection" % st.median(ratios))
PY
