#!/usr/bin/env bash
# Fault trial of issue 10, item 2: `belfry run` killed with SIGKILL in its first milliseconds.
#
# Each trial starts `belfry run --name j -- sh -c 'echo $BELFRY_RUN_ID > ran; sleep 1; exit 1'`,
# kills it with SIGKILL after a delay drawn uniformly from 0-50 ms, then runs `belfry status`
# (the next belfry process). Trials alternate between a fresh state directory (BELFRY_HOME)
# and one existing state directory that every such trial shares. Once every job is over, a
# run is LOST if its job ran (`ran` holds its run id) but the store has no `crashed` run with
# that id, or no outbox row for its alert. The rules repeat every problem alert
# (`repeat_failures_after = "0s"`), so every crashed run must alert.
#
#   scripts/trial-kill.sh                  # the release build of this tree, 200 trials
#   BELFRY=/path/to/belfry TRIALS=200 MAX_MS=50 SEED=1 scripts/trial-kill.sh
#
# Prints the counts; exits 1 if any run was lost.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BELFRY:-}" ]; then
  cargo build -q --release -p belfry-cli
  BELFRY="$PWD/target/release/belfry"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
BELFRY="$BELFRY" python3 - "$work" <<'PY'
import os, random, signal, sqlite3, subprocess, sys, time

work = sys.argv[1]
belfry = os.environ["BELFRY"]
trials = int(os.environ.get("TRIALS", "200"))
max_ms = float(os.environ.get("MAX_MS", "50"))
rng = random.Random(int(os.environ.get("SEED", str(time.time_ns()))))
cfg = os.path.join(work, "belfry.toml")
with open(cfg, "w") as f:
    f.write('[policy]\nrepeat_failures_after = "0s"\n')
base_env = dict(os.environ, BELFRY_CONFIG=cfg, BELFRY_BACKGROUND="0")
base_env.pop("BELFRY_URLS", None)
quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

existing = os.path.join(work, "existing")
# The existing state directory already holds the job and some history.
for _ in range(3):
    subprocess.run([belfry, "run", "-q", "--name", "j", "--", "true"],
                   env=dict(base_env, BELFRY_HOME=existing), check=True, **quiet)

done = []  # (trial dir, home, fresh, delay)
for i in range(trials):
    fresh = i % 2 == 0
    home = os.path.join(work, f"fresh{i}") if fresh else existing
    tdir = os.path.join(work, f"t{i}")
    os.mkdir(tdir)
    env = dict(base_env, BELFRY_HOME=home)
    delay = rng.uniform(0, max_ms / 1000)
    p = subprocess.Popen(
        [belfry, "run", "-q", "--name", "j", "--",
         "sh", "-c", 'echo "$BELFRY_RUN_ID" > ran; sleep 1; exit 1'],
        cwd=tdir, env=env, **quiet)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait()
    # The next belfry process.
    subprocess.run([belfry, "status"], env=env, **quiet)
    done.append((tdir, home, fresh, delay))

# Every job (1 s each, detached from its killed wrapper) is over before anything is counted.
time.sleep(1.5)
stats = {True: dict(trials=0, ran=0, crashed=0, alerted=0, lost=0),
         False: dict(trials=0, ran=0, crashed=0, alerted=0, lost=0)}
lost_delays = []
for tdir, home, fresh, delay in done:
    s = stats[fresh]
    s["trials"] += 1
    ran = os.path.join(tdir, "ran")
    if not os.path.exists(ran):
        continue  # killed before the job started (or before it wrote): nothing to find
    s["ran"] += 1
    run_id = open(ran).read().strip()
    db = os.path.join(home, "belfry.db")
    state = alerts = None
    if os.path.exists(db):
        c = sqlite3.connect(db)
        row = c.execute("SELECT state FROM runs WHERE id = ?", (run_id,)).fetchone()
        state = row[0] if row else None
        alerts = c.execute(
            "SELECT count(*) FROM outbox o JOIN notifications n ON n.id = o.notification_id "
            "WHERE n.run_id = ?", (run_id,)).fetchone()[0]
        c.close()
    s["crashed"] += state == "crashed"
    s["alerted"] += bool(alerts)
    if state != "crashed" or not alerts:
        s["lost"] += 1
        lost_delays.append(delay)

left = 0
for home in {h for _, h, _, _ in done}:
    left += sum(n.startswith("intent-") for n in os.listdir(home)) if os.path.isdir(home) else 0

for fresh, name in ((True, "fresh"), (False, "existing")):
    s = stats[fresh]
    print(f"{name:8}: {s['trials']} trials, job ran {s['ran']}, recorded crashed {s['crashed']}, "
          f"alert in the outbox {s['alerted']}, LOST {s['lost']}")
total = sum(s["lost"] for s in stats.values())
ran = sum(s["ran"] for s in stats.values())
print(f"total   : {trials} trials (kill at 0-{max_ms:g} ms), job ran {ran}, LOST {total}; "
      f"intent files left: {left}")
if lost_delays:
    print("kill delays of the lost runs (ms): " +
          ", ".join(f"{d * 1000:.1f}" for d in sorted(lost_delays)))
sys.exit(1 if total else 0)
PY
