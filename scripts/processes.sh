# Sourced by the scripts that run `foreman serve` and `foreman sim` as processes: the
# processes in `pids` are killed and `$work` removed on exit; `free_port` prints a free
# port; `wait_for URL` waits up to 10 s for the URL to answer. Set `$work` before
# sourcing it, and `$venv` (a Python virtual environment) if the system's python3 will
# not do.
python=${venv:+$venv/bin/python}
python=${python:-python3}
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {
  for _ in $(seq 1 100); do
    if "$python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
        "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not answer" >&2
  return 1
}
