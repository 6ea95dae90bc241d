#!/usr/bin/env bash
# Profiles the hot path of benchmark 1's loop: sequential non-streaming `/api/chat` calls
# over one keep-alive connection (wrk -t1 -c1), through `foreman serve` (release build, its
# database on the workspace's disk as in the bench) in front of an instant target. The
# target is nginx answering Ollama's canned JSON (`/api/tags`, `/api/ps`, `/api/chat`), so
# that foreman is the only process of ours doing work and `perf -p` sees nothing else.
#
# Writes to target/profile/: wrk's reports (direct to the target and through foreman),
# `perf stat` and `strace -c` of the foreman process over one run each, and `perf record`
# with DWARF call graphs, reported flat (self) and inclusive (children).
#
#   scripts/profile-overhead.sh [SECONDS]     # each phase runs SECONDS (default 10)
#
# Needs nginx, wrk, perf (Debian linux-perf) and strace; installs the missing ones.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}

need=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v perf >/dev/null 2>&1 || need+=(linux-perf)
command -v strace >/dev/null 2>&1 || need+=(strace)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --quiet --locked -p foreman-cli
bin=$PWD/target/release/foreman
out=$PWD/target/profile
rm -rf "$out" && mkdir -p "$out"
work=$(mktemp -d -p "$PWD/target")
# shellcheck source=scripts/processes.sh
source scripts/processes.sh

target_port=$(free_port)
foreman_port=$(free_port)
details='"details":{"families":["bench"],"family":"bench","format":"gguf","parameter_size":"3.2B","parent_model":"","quantization_level":"Q4_K_M"},"digest":"1443c87384f74d0387a1374fb60bbc8906ac64ba9d36e1e15d3043f34a03f24a"'
tags='{"models":[{'$details',"model":"bench:latest","modified_at":"2026-01-01T00:00:00Z","name":"bench:latest","size":2006250000}]}'
ps='{"models":[{"context_length":4096,'$details',"expires_at":"2326-01-01T00:00:00Z","model":"bench:latest","name":"bench:latest","size":2006250000,"size_vram":2006250000}]}'
chat='{"created_at":"2026-01-01T00:00:00Z","done":true,"done_reason":"stop","eval_count":1,"eval_duration":1,"load_duration":0,"message":{"content":"Simulated.","role":"assistant"},"model":"bench:latest","prompt_eval_count":5,"prompt_eval_duration":1,"total_duration":1}'
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
error_log $work/nginx/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    default_type application/json;
    tcp_nodelay on;
    server {
        listen 127.0.0.1:$target_port;
        location = /api/tags { return 200 '$tags'; }
        location = /api/ps { return 200 '$ps'; }
        location = /api/version { return 200 '{"version":"0.0.0-canned"}'; }
        location = /api/chat { return 200 '$chat'; }
        location / { return 200 '{}'; }
    }
}
EOF
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" -g 'daemon off;' &
pids+=($!)
wait_for "http://127.0.0.1:$target_port/api/tags"

FOREMAN_DB_PATH="$work/foreman.db" "$bin" serve --listen-addr "127.0.0.1:$foreman_port" \
  --target-url "http://127.0.0.1:$target_port" >"$work/foreman.log" 2>&1 &
fpid=$!
pids+=($fpid)
wait_for "http://127.0.0.1:$foreman_port/healthz"

cat >"$work/chat.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"bench:latest","messages":[{"role":"user","content":"Why is the sky blue?"}],"stream":false}'
EOF
load() { wrk -t1 -c1 -d"${secs}s" --latency -s "$work/chat.lua" "$1/api/chat"; }

echo "== warm-up, then direct to the target and through foreman (wrk -t1 -c1, ${secs}s each)"
wrk -t1 -c1 -d2s -s "$work/chat.lua" "http://127.0.0.1:$foreman_port/api/chat" >/dev/null
load "http://127.0.0.1:$target_port" >"$out/wrk-direct.txt"
load "http://127.0.0.1:$foreman_port" >"$out/wrk-foreman.txt"
grep -E "Requests/sec|50%|99%" "$out/wrk-direct.txt" "$out/wrk-foreman.txt"

echo "== perf stat of foreman under the same load"
load "http://127.0.0.1:$foreman_port" >"$out/wrk-stat.txt" &
perf stat -p "$fpid" -e task-clock,context-switches,cpu-migrations,instructions,cycles \
  -o "$out/perf-stat.txt" -- sleep "$secs"
wait $!
cat "$out/perf-stat.txt"; grep -E "requests in" "$out/wrk-stat.txt"

echo "== strace -c of foreman (syscall counts; strace slows it down, so counts, not times)"
load "http://127.0.0.1:$foreman_port" >"$out/wrk-strace.txt" &
timeout -s INT "$secs" strace -f -c -p "$fpid" -o "$out/strace-c.txt" || true
wait $!
head -25 "$out/strace-c.txt"; grep -E "requests in" "$out/wrk-strace.txt"

echo "== perf record (DWARF call graphs) of foreman"
load "http://127.0.0.1:$foreman_port" >"$out/wrk-record.txt" &
perf record -F 1999 -g --call-graph dwarf,16384 -p "$fpid" -o "$out/perf.data" -- sleep "$secs" 2>/dev/null
wait $!
grep -E "requests in" "$out/wrk-record.txt"
perf report -i "$out/perf.data" --no-children --sort comm,dso,sym --percent-limit 0.7 --stdio \
  -g none >"$out/report-self.txt" 2>/dev/null
perf report -i "$out/perf.data" --children --sort sym --percent-limit 2 --stdio -g none \
  >"$out/report-children.txt" 2>/dev/null
perf report -i "$out/perf.data" --no-children --sort comm --stdio -g none \
  >"$out/report-threads.txt" 2>/dev/null
echo "reports in $out: report-self.txt, report-children.txt, report-threads.txt"
