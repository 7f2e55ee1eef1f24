#!/usr/bin/env bash
# User-space instructions per short TCP session, Strait (bench/l4.yaml's TCP listener) against
# NGINX `stream`, under valgrind's callgrind: deterministic, so it compares builds on a busy
# machine where bench/l4.sh's sessions per second move by ±20%. Each session is a client
# connection, an upstream connection to the NGINX backend, one GET with `Connection: close`
# and both closes; 8 clients in parallel. The whole process's count is divided by SESSIONS
# (kernel time is not counted: bench/l4.sh reads each proxy's CPU time for that).
# Usage: bench/l4-instructions.sh [SESSIONS]   (needs valgrind, nginx with the stream module,
# python3; default 4000)
set -u
N=${1:-4000}
source "$(dirname "$0")/common.sh"
write_backend_conf
nginx -c "$W/backend.conf" &
cat > "$W/stream.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1; daemon off; master_process off; pid $W/stream.pid; error_log $W/stream.err;
events { worker_connections 10000; }
stream { server { listen 127.0.0.1:14002; proxy_pass 127.0.0.1:$BACK; } }
CONF
wait_ready $BACK
measure() { # name port stop-signal command...
  local name=$1 port=$2 signal=$3; shift 3
  valgrind --tool=callgrind --callgrind-out-file="$W/$name.out" "$@" 2>"$W/$name.err" & local pid=$!
  wait_ready "$port"
  python3 "$ROOT/bench/short_sessions.py" "$port" "$N" || { echo "$name: the load failed"; exit 1; }
  kill "-$signal" "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  local total
  total=$(callgrind_annotate "$W/$name.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
  printf "%-7s instructions/session=%d\n" "$name" $((total / N))
  eval "IR_$name=$total"
}
measure strait 14003 INT "$STRAIT" run -c "$ROOT/bench/l4.yaml" --no-watch --log-level warn
measure nginx 14002 QUIT nginx -c "$W/stream.conf"
awk -v s="$IR_strait" -v n="$IR_nginx" 'BEGIN { printf "ratio strait/nginx=%.2f (lower is better)\n", s / n }'
