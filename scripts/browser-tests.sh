#!/usr/bin/env bash
# The status page in a real browser: headless Chromium (Debian's `chromium` and
# `chromium-driver`, installed with apt-get when missing) driven by Selenium from
# tests/browser/test_ui.py, against `foreman serve` (with an admin token) in front of
# `foreman sim`, each on a free port. Screenshots go to target/browser-screenshots; their
# paths are printed. Run from anywhere; fails if the test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

venv=target/browser-venv
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/browser/requirements.txt

cargo build --quiet -p foreman-cli --locked
bin=$root/target/debug/foreman

work=$(mktemp -d)
shots=$root/target/browser-screenshots
rm -rf "$shots" && mkdir -p "$shots"
# shellcheck source=scripts/processes.sh
source scripts/processes.sh
sim_port=$(free_port)
foreman_port=$(free_port)
driver_port=$(free_port)
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')

# Slow enough generations (about 3 s each) that a job is seen queued, then running.
"$bin" sim --listen-addr "127.0.0.1:$sim_port" --load-time 200ms --tokens-per-second 8 \
  >"$work/sim.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$sim_port/"
FOREMAN_DB_PATH="$work/foreman.db" FOREMAN_AUTH_TOKEN="$token" "$bin" serve \
  --listen-addr "127.0.0.1:$foreman_port" \
  --target-url "http://127.0.0.1:$sim_port" >"$work/foreman.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$foreman_port/healthz"

/usr/bin/chromedriver --port="$driver_port" >"$work/chromedriver.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$driver_port/status"

export FOREMAN_URL="http://127.0.0.1:$foreman_port" FOREMAN_ADMIN_TOKEN="$token" \
  WEBDRIVER_URL="http://127.0.0.1:$driver_port" SCREENSHOT_DIR="$shots"
if ! "$venv/bin/python" tests/browser/test_ui.py; then
  echo "--- foreman log"; tail -50 "$work/foreman.log"
  echo "--- chromedriver log"; tail -20 "$work/chromedriver.log"
  exit 1
fi
