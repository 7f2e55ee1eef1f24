#!/usr/bin/env bash
# Side-by-side HTTP/1.1 reverse-proxy benchmark on loopback: Strait vs NGINX vs HAProxy,
# same backend, same wrk settings, one worker each, measured in one run over several rounds.
#
# Usage: bench/run.sh [ROUNDS] [DURATION_S] [CONNECTIONS]
#   ROUNDS=5 DURATION=10 CONNECTIONS=64 by default. PIN=1 pins every proxy to CPU 1 and
#   the backend and wrk to CPU 0 (taskset), so all proxies get the same core to themselves. Needs nginx, haproxy, wrk, python3
#   (scripts/bench-deps.sh installs them). Build first: cargo build --release.
# Prints every round, then medians and ratios; then idle memory and per-connection memory.
# Everything listens on 127.0.0.1 only; every load run is bounded by DURATION_S.
set -u
ROUNDS=${1:-5}; D=${2:-10}; C=${3:-64}
IDLE_CONNS=${IDLE_CONNS:-8000}
source "$(dirname "$0")/common.sh"
if [ "${PIN:-0}" = 1 ]; then PROXY_CPU="taskset -c 1"; LOAD_CPU="taskset -c 0"; else PROXY_CPU=""; LOAD_CPU=""; fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
write_backend_conf
write_peer_confs
# Strait with 10 routes, and with 10,000 routes; the request path matches route number 5 / 5000.
python3 - "$W" <<'PY'
import sys
w = sys.argv[1]
def config(n, port):
    lines = ["workers: 1", "server: { request_id: false, forwarded_headers: false }", "listeners:",
             "  - name: bench", f"    bind: 127.0.0.1:{port}", "    routes:"]
    for i in range(n):
        lines.append(f"      - {{ match: {{ path: {{ prefix: /r{i} }} }}, forward: {{ cluster: backend }} }}")
    lines.append("      - { match: { path: { prefix: / } }, forward: { cluster: backend } }")
    lines += ["clusters:", "  - name: backend", "    keepalive: 64",
              "    endpoints: [ { address: 127.0.0.1:18080 } ]"]
    return "\n".join(lines) + "\n"
open(f"{w}/strait-10.yaml", "w").write(config(10, 18083))
open(f"{w}/strait-10k.yaml", "w").write(config(10000, 18084))
PY

$LOAD_CPU nginx -c "$W/backend.conf" &
$PROXY_CPU nginx -c "$W/nginx.conf" &
$PROXY_CPU haproxy -f "$W/haproxy.cfg" -q &
$PROXY_CPU "$STRAIT" run -c "$W/strait-10.yaml" --no-watch --log-level warn & SP=$!
$PROXY_CPU "$STRAIT" run -c "$W/strait-10k.yaml" --no-watch --log-level warn & SKP=$!
wait_ready $BACK 18081 18082 18083 18084

declare -A ALL
run() { # name port path
  local out rps p50 p99
  out=$($LOAD_CPU wrk -t1 -c"$C" -d"${D}s" --latency "http://127.0.0.1:$2$3" 2>&1)
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  err=$(echo "$out" | grep -E "Non-2xx|Socket errors" | tr '\n' ' ')
  printf "  %-12s rps=%-10s p50=%-8s p99=%-8s %s\n" "$1" "${rps:-0}" "$p50" "$p99" "$err"
  ALL[$1]="${ALL[$1]:-} ${rps:-0}:$(to_us "$p50"):$(to_us "$p99")"
}
to_us() { # wrk latency (e.g. 1.08ms, 336.00us, 1.2s) -> microseconds
  awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/,"",v); print v+0 }
    else if (v ~ /ms$/) { sub(/ms$/,"",v); print v*1000 } else if (v ~ /s$/) { sub(/s$/,"",v); print v*1000000 } else print 0 }'
}
echo "rounds=$ROUNDS duration=${D}s connections=$C (wrk -t1), one worker per proxy, pinned=${PIN:-0}"
for r in $(seq "$ROUNDS"); do
  echo "round $r"
  run nginx 18081 /r5/x
  run haproxy 18082 /r5/x
  run strait 18083 /r5/x
  run strait-10k 18084 /r5000/x
done
field() { echo "${ALL[$1]}" | tr ' ' '\n' | grep -v '^$' | cut -d: -f"$2" | median; }
echo "medians"
for n in nginx haproxy strait strait-10k; do
  printf "  %-12s rps=%-10s p50=%-6sus p99=%-6sus\n" "$n" "$(field $n 1)" "$(field $n 2)" "$(field $n 3)"
done
awk -v s="$(field strait 1)" -v k="$(field strait-10k 1)" -v n="$(field nginx 1)" -v h="$(field haproxy 1)" \
  -v sp="$(field strait 3)" -v np="$(field nginx 3)" -v hp="$(field haproxy 3)" 'BEGIN {
  printf "ratios strait/nginx=%.2f strait/haproxy=%.2f strait-10k/strait=%.2f p99 strait/nginx=%.2f p99 strait/haproxy=%.2f\n", s/n, s/h, k/s, sp/np, sp/hp }'

echo "memory"
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
echo "  strait idle RSS: $(rss $SP) KiB (10 routes), $(rss $SKP) KiB (10,000 routes)"
# nginx: the worker process holds the connections (the pid file names the master).
for spec in "nginx:18081:$(pgrep -P "$(cat "$W/nginx.pid")" | head -1)" "haproxy:18082:$(pgrep -f "haproxy -f $W/haproxy.cfg" | head -1)" "strait:18083:$SP"; do
  IFS=: read -r name port pid <<<"$spec"
  printf "  %-8s " "$name"; python3 "$ROOT/../shared/tools/idle-conns.py" "$port" "$IDLE_CONNS" "$pid"
done
