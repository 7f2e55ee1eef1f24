#!/usr/bin/env bash
# Instructions per request of the gateway pipeline against the plain path, under valgrind's
# callgrind: deterministic, so it compares builds on a busy machine where requests/s move by
# ±20% from one round to the next (bench/gateway.sh gives the rates).
# Runs Strait (one worker) with bench/peers.yaml, bench/gateway.yaml (JWT RS256 + local rate
# limit + access log) and bench/gateway-redis.yaml (the limit's counters in a redis-server this
# script starts on 127.0.0.1:16379); a python client sends REQUESTS keep-alive GETs with one
# RS256 bearer token over 8 connections in lockstep; the whole process's instruction count is
# divided by them.
# Usage: bench/gateway-instructions.sh [REQUESTS]   (needs valgrind, nginx, openssl, redis-server,
# python3; default 10000)
set -u
N=${1:-10000}
source "$(dirname "$0")/common.sh"
start_gateway_bench
TOKEN=$(jwt RS256 openssl dgst -sha256 -sign "$W/rsa.pem" -binary)

load() { # port
  python3 "$ROOT/bench/lockstep.py" "$1" "$N" "Authorization: Bearer $TOKEN"
}
measure() { # name config
  valgrind --tool=callgrind --callgrind-out-file="$W/$1.out" \
    "$STRAIT" run -c "$2" --no-watch --log-level warn 2>"$W/$1.err" & local pid=$!
  wait_ready 18083
  load 18083 || { echo "$1: the load failed"; kill -INT "$pid"; exit 1; }
  kill -INT "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  local total
  total=$(callgrind_annotate "$W/$1.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
  printf "%-14s instructions/request=%d\n" "$1" $((total / N))
  eval "IR_${1//-/_}=$total"
}
measure plain "$ROOT/bench/peers.yaml"
measure gateway "$ROOT/bench/gateway.yaml"
measure gateway-redis "$ROOT/bench/gateway-redis.yaml"
awk -v p="$IR_plain" -v g="$IR_gateway" -v r="$IR_gateway_redis" -v n="$N" \
  'BEGIN { printf "gateway adds %d, redis policy %d instructions a request to the plain path\n", (g - p) / n, (r - p) / n }'
