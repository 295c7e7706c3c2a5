#!/usr/bin/env bash
# What ten configured channels add to a process's start, for two builds side by side
# (BENCHMARKS.md, "Ten channels at start-up"): instructions under callgrind (one run each),
# page faults, then CPU from `perf stat -r 100 -e task-clock` in alternating rounds.
#
#   scripts/bench-startup.sh OLD_BELFRY NEW_BELFRY     # ROUNDS=3 by default; needs perf, valgrind
set -euo pipefail
old=$1 new=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ch() { printf '[channels.%s]\nurl = "%s"\n' "$1" "$2"; }
{
  ch tg 'tgram://123456789:AAHtoken/-100123'
  ch slack 'slack://T1ABC/B2DEF/xyz789/#ops'
  ch discord 'discord://123456/tokenABC'
  ch ntfy 'ntfys://user:pass@ntfy.example.com/alerts'
  ch ntfy2 'ntfy://ntfy.example.com/backups'
  ch gotify 'gotify://gotify.example.com/AbCdEf'
  ch pover 'pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi/phone'
  ch pd 'pagerduty://ikey@akey'
  ch hook 'json://127.0.0.1:9/belfry'
  ch mail 'mailto://ops:hunter2@example.com/oncall@example.org'
} > "$work/ten.toml"
: > "$work/empty.toml"
export BELFRY_HOME="$work/home" BELFRY_BACKGROUND=0
"$old" --config "$work/empty.toml" run -q --name bench -- true # creates the store
uptime
for b in "$old" "$new"; do
  for f in empty ten; do
    for cmd in "config check" "run -q --name bench -- true"; do
      # shellcheck disable=SC2086
      n=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$b" --config "$work/$f.toml" $cmd 2>&1 >/dev/null |
        awk '/refs/{print $4}')
      echo "instructions $b $f ${cmd%% *} $n"
    done
  done
done
for b in "$old" "$new"; do
  for f in empty ten; do
    for cmd in "config check" "run -q --name bench -- true"; do
      # shellcheck disable=SC2086
      n=$(perf stat -r 30 -e page-faults "$b" --config "$work/$f.toml" $cmd 2>&1 >/dev/null |
        awk '/page-faults/{print $1}')
      echo "page-faults $b $f ${cmd%% *} $n"
    done
  done
done
for r in $(seq 1 "${ROUNDS:-3}"); do
  for b in "$old" "$new"; do
    for f in empty ten; do
      for cmd in "config check" "run -q --name bench -- true"; do
        # shellcheck disable=SC2086
        t=$(perf stat -r 100 -e task-clock "$b" --config "$work/$f.toml" $cmd 2>&1 >/dev/null |
          awk '/task-clock/{print $1}')
        echo "round $r $b $f ${cmd%% *} $t ms"
      done
    done
  done
done
uptime
