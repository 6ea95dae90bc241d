#!/usr/bin/env bash
# Real client libraries, written elsewhere, against a live foreman: the official `ollama`
# and `openai` Python packages, and Prometheus' own parser for `/metrics`
# (tests/clients/test_*.py), pointed at `foreman serve` in front of the simulated Ollama.
# Installs what it needs into target/client-venv; run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

venv=target/client-venv
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/clients/requirements.txt

cargo build --quiet -p foreman-cli --locked
bin=$root/target/debug/foreman

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sim_port=$(free_port)
foreman_port=$(free_port)

"$bin" sim --listen-addr "127.0.0.1:$sim_port" --load-time 100ms --tokens-per-second 400 \
  >"$work/sim.log" 2>&1 &
pids+=($!)
FOREMAN_DB_PATH="$work/foreman.db" "$bin" serve \
  --listen-addr "127.0.0.1:$foreman_port" \
  --target-url "http://127.0.0.1:$sim_port" \
  --poll-interval 1s >"$work/foreman.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
      "http://127.0.0.1:$foreman_port/healthz" >/dev/null 2>&1; then break; fi
  sleep 0.1
done

status=0
FOREMAN_URL="http://127.0.0.1:$foreman_port" SIM_URL="http://127.0.0.1:$sim_port" \
  "$venv/bin/python" -m pytest -q tests/clients || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- foreman log"; tail -50 "$work/foreman.log"
  echo "--- simulator log"; tail -20 "$work/sim.log"
fi
exit $status
