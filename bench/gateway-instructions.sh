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
write_backend_conf
nginx -c "$W/backend.conf" &
wait_ready $BACK
redis-server --port 16379 --bind 127.0.0.1 --save '' --appendonly no --dir "$W" --logfile "$W/redis.log" &
for _ in $(seq 100); do [ "$(redis-cli -p 16379 ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
export BENCH_JWT_DIR="$W" BENCH_LOG="$W/access.log"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/rsa.pem" 2>/dev/null
openssl pkey -in "$W/rsa.pem" -pubout -out "$W/rsa_public.pem"
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
head=$(printf '{"alg":"RS256","typ":"JWT"}' | b64url)
body=$(printf '{"iss":"rs-key","sub":"bench","exp":%d}' $(( $(date +%s) + 86400 )) | b64url)
sig=$(printf '%s.%s' "$head" "$body" | openssl dgst -sha256 -sign "$W/rsa.pem" -binary | b64url)
TOKEN="$head.$body.$sig"

load() { # port
  python3 - "$1" "$N" "$TOKEN" <<'PY'
import socket, sys
port, n, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conns = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(8)]
req = ("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n"
       "Authorization: Bearer %s\r\n\r\n" % token).encode()
done = 0
while done < n:
    for c in conns:
        c.sendall(req)
    for c in conns:
        buf = b""
        while not buf.endswith(b"hello, world\n"):
            chunk = c.recv(4096)
            if not chunk:
                raise SystemExit("connection closed")
            buf += chunk
        if not buf.startswith(b"HTTP/1.1 200"):
            raise SystemExit("not a 200: %r" % buf[:80])
    done += len(conns)
PY
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
