#!/usr/bin/env bash
# Real client libraries, written elsewhere, against a live foreman: the official `ollama`,
# `openai` and `anthropic` Python packages, `langchain-ollama`, Prometheus' own parser for
# `/metrics` (tests/clients/test_*.py), and the `ollama` npm package (tests/clients/js),
# pointed at `foreman serve` in front of the simulated Ollama, with an hour-long poll
# interval so that every model change must show at once. Installs what it needs (the pinned
# Python packages into target/client-venv, the locked npm packages into
# tests/clients/js/node_modules); run from anywhere. Fails if any suite fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

venv=target/client-venv
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
(cd tests/clients/js && npm ci --no-audit --no-fund --loglevel=error)

cargo build --quiet -p foreman-cli --locked
bin=$root/target/debug/foreman

work=$(mktemp -d)
# shellcheck source=scripts/processes.sh
source scripts/processes.sh
sim_port=$(free_port)
foreman_port=$(free_port)

"$bin" sim --listen-addr "127.0.0.1:$sim_port" --load-time 100ms --tokens-per-second 400 \
  >"$work/sim.log" 2>&1 &
pids+=($!)
# foreman polls the target at start and then only hourly: the simulator must be up first.
wait_for "http://127.0.0.1:$sim_port/"
FOREMAN_DB_PATH="$work/foreman.db" "$bin" serve \
  --listen-addr "127.0.0.1:$foreman_port" \
  --target-url "http://127.0.0.1:$sim_port" \
  --poll-interval 1h >"$work/foreman.log" 2>&1 &
pids+=($!)

wait_for "http://127.0.0.1:$foreman_port/healthz"

export FOREMAN_URL="http://127.0.0.1:$foreman_port" SIM_URL="http://127.0.0.1:$sim_port"
failed=()
"$venv/bin/python" -m pytest -q tests/clients || failed+=("pytest")
(cd tests/clients/js && node --test) || failed+=("node --test")
if [[ ${#failed[@]} -ne 0 ]]; then
  echo "--- failed: ${failed[*]}"
  echo "--- foreman log"; tail -50 "$work/foreman.log"
  echo "--- simulator log"; tail -20 "$work/sim.log"
  exit 1
fi
