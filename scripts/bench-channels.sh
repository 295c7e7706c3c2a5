#!/usr/bin/env bash
# What configured channels cost every `belfry run` at start (the URLs are read and checked
# before the job starts). First, reading each URL in a fresh process and again (the
# `parse_cost` example); then interleaved rounds of hyperfine on `belfry run -- true` with one
# json:// channel, one tgram:// channel, and five services read by tocsin. No channel is sent
# to: they take problems only, and the job succeeds. Nothing reaches the network.
#
#   scripts/bench-channels.sh          # ROUNDS=8 RUNS=100 by default; needs hyperfine
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
cargo build -q --release -p belfry-cli
cargo build -q --release -p belfry-channels --example parse_cost
B="$PWD/target/release/belfry"
echo "== reading one URL, in a fresh process each (median of 21 processes)"
for url in 'json://127.0.0.1:9/belfry' 'http://127.0.0.1:9/belfry' \
  'tgram://123456789:AAHtoken/-100123' 'slack://T1ABC/B2DEF/xyz789/#ops' \
  'https://discord.com/api/webhooks/123456/tokenABC' 'ntfys://user:pass@ntfy.example.com/alerts' \
  'gotify://gotify.example.com/AbCdEf' 'pagerduty://ikey@akey'; do
  for _ in $(seq 21); do target/release/examples/parse_cost "$url"; done |
    sort -t' ' -k3 -n | sed -n 11p
done
echo "== belfry run -- true with channels configured (interleaved rounds)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
channel() { printf '[channels.%s]\nurl = "%s"\nstates = ["problem"]\n' "$1" "$2"; }
channel hook 'json://127.0.0.1:9/belfry' > "$work/json.toml"
channel tg 'tgram://123456789:AAHtoken/-100123' > "$work/tgram.toml"
{
  channel tg 'tgram://123456789:AAHtoken/-100123'
  channel slack 'slack://T1ABC/B2DEF/xyz789/#ops'
  channel discord 'https://discord.com/api/webhooks/123456/tokenABC'
  channel ntfy 'ntfys://user:pass@ntfy.example.com/alerts'
  channel pd 'pagerduty://ikey@akey'
} > "$work/five.toml"
export BELFRY_BACKGROUND=0
for c in json tgram five; do
  BELFRY_HOME="$work/$c" BELFRY_CONFIG="$work/$c.toml" "$B" run -q --name bench -- true
done
for r in $(seq 1 "${ROUNDS:-8}"); do
  hyperfine -N --warmup 10 --runs "${RUNS:-100}" --export-json "$work/round$r.json" \
    "env BELFRY_HOME=$work/json BELFRY_CONFIG=$work/json.toml $B run -q --name bench -- true" \
    "env BELFRY_HOME=$work/tgram BELFRY_CONFIG=$work/tgram.toml $B run -q --name bench -- true" \
    "env BELFRY_HOME=$work/five BELFRY_CONFIG=$work/five.toml $B run -q --name bench -- true" \
    >/dev/null 2>&1
done
python3 - "$work" <<'PY'
import glob, json, statistics as st, sys
rows = []
for f in sorted(glob.glob(sys.argv[1] + "/round*.json")):
    rows.append([st.median(x["times"]) * 1e3 for x in json.load(open(f))["results"]])
for j, t, f in rows:
    print(f"json {j:.2f}  tgram {t:.2f} (+{t-j:.2f})  five {f:.2f} (+{f-j:.2f})")
print("median over rounds: tgram +%.2f ms, five services +%.2f ms over one json:// channel" % (
    st.median([t - j for j, t, f in rows]), st.median([f - j for j, t, f in rows])))
PY
