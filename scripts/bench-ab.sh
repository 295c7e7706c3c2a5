#!/usr/bin/env bash
# Interleaved A/B of two belfry builds on `belfry run -- true`: rounds of hyperfine on
# (true, A, B), the ratio B/A taken per round, its median reported. Interleaving makes both
# builds see the same (noisy, shared) machine.
#
#   scripts/bench-ab.sh path/to/belfry-A path/to/belfry-B     # ROUNDS=12 RUNS=60 by default
set -euo pipefail
A=${1:?usage: bench-ab.sh BELFRY_A BELFRY_B}
B=${2:?usage: bench-ab.sh BELFRY_A BELFRY_B}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
BELFRY_HOME="$work/a" "$A" run -q --name b -- true
BELFRY_HOME="$work/b" "$B" run -q --name b -- true
for r in $(seq 1 "${ROUNDS:-12}"); do
  hyperfine -N --warmup 5 --runs "${RUNS:-60}" --export-json "$work/round$r.json" 'true' \
    "env BELFRY_HOME=$work/a $A run --name b -- true" \
    "env BELFRY_HOME=$work/b $B run --name b -- true" >/dev/null 2>&1
done
python3 - "$work" <<'PY'
import glob, json, statistics as st, sys
rows = []
for f in sorted(glob.glob(sys.argv[1] + "/round*.json")):
    r = json.load(open(f))["results"]
    rows.append([st.median(x["times"]) * 1e3 for x in r])
for t, a, b in rows:
    print(f"true {t:.2f}  A {a:.2f} (+{a-t:.2f})  B {b:.2f} (+{b-t:.2f})  B/A {b/a:.3f}")
print("median over rounds: A +%.2f ms, B +%.2f ms, B/A %.3f" % (
    st.median([a - t for t, a, b in rows]),
    st.median([b - t for t, a, b in rows]),
    st.median([b / a for t, a, b in rows])))
PY
