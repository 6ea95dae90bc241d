#!/usr/bin/env bash
# The full benchmark suite with its baselines: installs nginx (the proxy hop of benchmarks
# 1 and 2) and wrk (the second load generator of benchmarks 3 and 4) with apt-get when
# missing, then runs `cargo run --release -p foreman-bench` with the arguments given
# (e.g. `scripts/bench.sh --quick`, `scripts/bench.sh --only overhead`). Without them the
# bench still runs and prints a `skipped` row for each baseline. See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Benchmark 6 holds 10,000 streaming clients open (the bench raises its own limit too,
# where it may).
ulimit -n 65536 2>/dev/null || true
exec cargo run --release --locked -p foreman-bench -- "$@"
