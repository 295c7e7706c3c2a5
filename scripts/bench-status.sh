#!/usr/bin/env bash
# `belfry status` and `belfry status --json` on a store of JOBS jobs (default 100,000, with
# RUNS_PER_JOB = 10 finished runs each, see scripts/bench-status-store.py): wall time with
# hyperfine and peak RSS with GNU time's %M, for this tree's release build and, side by side
# in the same run, for another build given as an argument (an earlier commit's, say).
#
#   scripts/bench-status.sh [OTHER_BELFRY]   # needs hyperfine and GNU time (Debian: hyperfine, time)
#
# JOBS, RUNS_PER_JOB, RUNS (hyperfine's, default 10) and NEW_BELFRY (this tree's binary, if
# built already) may be set in the environment.
#
# Output goes to /dev/null (hyperfine -N's default), so the figures are belfry's, not a terminal's.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 2; }

if [ -n "${NEW_BELFRY:-}" ]; then   # a build of this tree made already
    NEW=$(realpath "$NEW_BELFRY")
else
    cargo build -q --release --locked -p belfry-cli
    NEW="${CARGO_TARGET_DIR:-$PWD/target}/release/belfry"
fi
OLD=${1:-}
[ -z "$OLD" ] || OLD=$(realpath "$OLD")
jobs=${JOBS:-100000}
per_job=${RUNS_PER_JOB:-10}
runs=${RUNS:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The store is created by the older build, so that both can open it: the newer one migrates
# its own copy (in the warm-up runs).
BELFRY_HOME="$work/new" "${OLD:-$NEW}" status >/dev/null
python3 scripts/bench-status-store.py "$work/new/belfry.db" "$jobs" "$per_job"
builds=(new)
[ -z "$OLD" ] || { cp -r "$work/new" "$work/old"; builds=(old new); }
bin() { if [ "$1" = old ]; then echo "$OLD"; else echo "$NEW"; fi; }

cmds=()
for args in "status" "status --json"; do
    for b in "${builds[@]}"; do
        cmds+=(-n "$b: $args" "env BELFRY_HOME=$work/$b $(bin "$b") $args")
    done
done
hyperfine -N --warmup 2 --runs "$runs" --export-json "$work/times.json" "${cmds[@]}"

echo "== peak RSS (GNU time %M, median of 5 runs)"
for args in "status" "status --json"; do
    for b in "${builds[@]}"; do
        kib=$(for _ in 1 2 3 4 5; do
            BELFRY_HOME="$work/$b" /usr/bin/time -f %M "$(bin "$b")" $args 2>&1 >/dev/null | tail -1
        done | sort -n | sed -n 3p)
        echo "$b: $args: $kib KiB ($(awk "BEGIN { printf \"%.1f\", $kib / 1024 }") MiB)"
    done
done

echo "== medians"
python3 - "$work/times.json" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"]
m = {x["command"]: statistics.median(x["times"]) * 1e3 for x in r}
for k, v in m.items():
    print(f"{k}: {v:.1f} ms")
for args in ("status", "status --json"):
    if f"old: {args}" in m:
        print(f"{args}: new/old = {m[f'new: {args}'] / m[f'old: {args}']:.3f}")
PY
