# Sourced (not run) by the benchmarks that start one `belfry serve` (bench-pings.sh,
# bench-serve-memory.sh, bench-dashboard.sh): it gives them
# - $BELFRY, a release build of the `belfry` binary unless BELFRY names one already;
# - $work, a scratch directory removed at exit, with the server (its pid in $server) stopped;
# - $port, a free-looking loopback port, and `serve`, which starts `belfry serve` with the
#   belfry.toml in $work (state directory $work/home), its log in $work/serve.log, and
#   returns once it answers /healthz (or fails with its log);
# - `need_wrk`, which installs Debian's wrk when it is missing.

target=${CARGO_TARGET_DIR:-$PWD/target}
if [ -z "${BELFRY:-}" ]; then
  cargo build -q --release -p belfry-cli
  BELFRY=$target/release/belfry
fi
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))

need_wrk() {
  if ! command -v wrk >/dev/null; then
    echo "installing Debian's wrk" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
  fi
}

serve() {
  export BELFRY_HOME=$work/home BELFRY_CONFIG=$work/belfry.toml
  "$BELFRY" serve 2>"$work/serve.log" &
  server=$!
  for _ in $(seq 600); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && return 0
    kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; return 1; }
    sleep 0.1
  done
  echo "belfry serve did not answer /healthz within a minute" >&2
  cat "$work/serve.log" >&2
  return 1
}
