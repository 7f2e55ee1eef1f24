#!/usr/bin/env bash
# Response-cache hits against the plain proxied path, same run: Strait with bench/cache.yaml
# (every request after the first answered from the cache) and with bench/peers.yaml, on the
# same NGINX backend, alternating rounds, medians of requests/s and their ratio. Each round
# checks that the second request is a hit.
# Usage: bench/cache.sh [ROUNDS] [DURATION_S] [CONNECTIONS]   (needs nginx, wrk)
set -u
ROUNDS=${1:-3}; D=${2:-5}; C=${3:-64}
source "$(dirname "$0")/common.sh"
write_backend_conf
nginx -c "$W/backend.conf" &
wait_ready $BACK
declare -A RPS
for r in $(seq "$ROUNDS"); do
  for name in plain cache; do
    config="$ROOT/bench/peers.yaml"; [ $name = cache ] && config="$ROOT/bench/cache.yaml"
    "$STRAIT" run -c "$config" --no-watch --log-level warn & pid=$!
    wait_ready 18083
    curl -s -o /dev/null http://127.0.0.1:18083/
    status=$(curl -s -D - -o /dev/null http://127.0.0.1:18083/ | tr -d '\r' | awk 'tolower($1)=="x-cache-status:" {print $2}')
    if [ $name = cache ] && [ "$status" != HIT ]; then echo "the second request was not a hit ($status)"; exit 1; fi
    rps=$(wrk -t1 -c"$C" -d"${D}s" http://127.0.0.1:18083/ | awk '/Requests\/sec/ {print $2}')
    kill $pid; wait $pid 2>/dev/null
    printf "round %d %-6s rps=%s\n" "$r" "$name" "$rps"
    RPS[$name]="${RPS[$name]:-} $rps"
  done
done
p=$(echo "${RPS[plain]}" | median); c=$(echo "${RPS[cache]}" | median)
echo "median rps: plain=$p cache-hits=$c"
awk -v p="$p" -v c="$c" 'BEGIN { printf "ratio cache/plain=%.2f\n", c/p }'
