#!/usr/bin/env bash
# Response aggregation against the seed's Express gateway (bench/express/gateway.js) on the
# same two services, same run:
#   1. requests/s, services answering at once (NGINX): alternating rounds, medians, ratio;
#   2. latency with slow services (20 ms and 30 ms): parallel calls take about the slower
#      one, sequential calls (the seed's `await`s) the sum.
# Usage: bench/aggregate.sh [ROUNDS] [DURATION_S] [CONNECTIONS]
# Needs nginx, wrk, node and npm; express and node-fetch come from the npm registry into
# bench/express/node_modules on first use.
set -u
ROUNDS=${1:-3}; D=${2:-5}; C=${3:-64}
source "$(dirname "$0")/common.sh"
EXPRESS="$ROOT/bench/express"
if [ ! -d "$EXPRESS/node_modules/express" ] || [ ! -d "$EXPRESS/node_modules/node-fetch" ]; then
  (cd "$EXPRESS" && npm install --no-audit --no-fund --silent) || { echo "npm install failed"; exit 1; }
fi
cat > "$W/services.conf" <<CONF
worker_processes 1; daemon off; pid $W/services.pid; error_log $W/services.err;
worker_rlimit_nofile 20000;
events { worker_connections 10000; }
http { access_log off; keepalive_requests 1000000; default_type application/json;
  server { listen 127.0.0.1:18084; location / { return 200 '{"name":"service1","items":[1,2,3]}'; } }
  server { listen 127.0.0.1:18085; location / { return 200 '{"name":"service2","items":[4,5,6]}'; } } }
CONF
nginx -c "$W/services.conf" &
wait_ready 18084 18085

start_strait() { # config
  "$STRAIT" run -c "$1" --no-watch --log-level warn & PID=$!
  wait_ready 18086
  URL=http://127.0.0.1:18086/api/data
}
start_express() { # service1-port service2-port
  PORT=18087 SERVICE1=http://127.0.0.1:$1 SERVICE2=http://127.0.0.1:$2 node "$EXPRESS/gateway.js" >/dev/null & PID=$!
  wait_ready 18087
  URL=http://127.0.0.1:18087/api/data
}
check() { # name
  local body
  body=$(curl -s "$URL")
  case "$body" in *service1*service2*) ;; *) echo "$1: unexpected answer: $body"; kill $PID; exit 1 ;; esac
}
stop() { kill $PID; wait $PID 2>/dev/null; }

declare -A RPS
for r in $(seq "$ROUNDS"); do
  for name in strait express; do
    if [ $name = strait ]; then start_strait "$ROOT/bench/aggregate.yaml"; else start_express 18084 18085; fi
    check $name
    rps=$(wrk -t1 -c"$C" -d"${D}s" "$URL" | awk '/Requests\/sec/ {print $2}')
    stop
    printf "round %d %-8s rps=%s\n" "$r" "$name" "$rps"
    RPS[$name]="${RPS[$name]:-} $rps"
  done
done
s=$(echo "${RPS[strait]}" | median); e=$(echo "${RPS[express]}" | median)
echo "median rps: strait=$s express=$e"
awk -v s="$s" -v e="$e" 'BEGIN { printf "ratio strait/express=%.2f\n", s/e }'

# Latency: services that take 20 ms and 30 ms, 4 connections.
PORT=18088 NAME=service1 DELAY_MS=20 node "$EXPRESS/slow-service.js" & 
PORT=18089 NAME=service2 DELAY_MS=30 node "$EXPRESS/slow-service.js" &
wait_ready 18088 18089
sed -e 's/127.0.0.1:18084/127.0.0.1:18088/' -e 's/127.0.0.1:18085/127.0.0.1:18089/' \
  "$ROOT/bench/aggregate.yaml" > "$W/aggregate-slow.yaml"
for name in strait express; do
  if [ $name = strait ]; then start_strait "$W/aggregate-slow.yaml"; else start_express 18088 18089; fi
  check $name
  latency=$(wrk -t1 -c4 -d3s "$URL" | awk '/Latency/ {print $2}')
  stop
  echo "latency with 20 ms and 30 ms services: $name mean=$latency"
done
