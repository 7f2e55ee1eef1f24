#!/usr/bin/env bash
# Instructions per proxied request under valgrind's callgrind, Strait vs NGINX: deterministic,
# so it compares builds on a busy machine where requests/s and CPU time move by ±15%.
# Usage: bench/instructions.sh [REQUESTS]   (needs valgrind, nginx, python3; default 20000)
# Each proxy runs one worker under callgrind; a python client sends REQUESTS keep-alive GETs
# over 8 connections in lockstep; the whole process's instruction count is divided by them.
set -u
N=${1:-20000}
source "$(dirname "$0")/common.sh"
write_backend_conf
write_peer_confs
sed -i 's/daemon off;/daemon off; master_process off;/' "$W/nginx.conf"
nginx -c "$W/backend.conf" &
load() { # port
  python3 "$ROOT/bench/lockstep.py" "$1" "$N"
}
measure() { # name port command...
  local name=$1 port=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file="$W/$name.out" "$@" 2>"$W/$name.err" & local pid=$!
  for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
  load "$port"
  kill -INT "$pid" 2>/dev/null; kill -QUIT "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  local total
  total=$(callgrind_annotate "$W/$name.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
  awk -v t="$total" -v n="$N" -v name="$name" 'BEGIN { printf "%-8s instructions/request=%.0f\n", name, t/n }'
  eval "IR_$name=$total"
}
measure nginx 18081 nginx -c "$W/nginx.conf"
measure strait 18083 "$STRAIT" run -c "$ROOT/bench/peers.yaml" --no-watch --log-level warn
awk -v s="$IR_strait" -v n="$IR_nginx" 'BEGIN { printf "ratio strait/nginx=%.2f (lower is better)\n", s/n }'
