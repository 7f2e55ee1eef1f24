#!/usr/bin/env bash
# The gateway pipeline against the plain proxy path, same run: Strait with bench/gateway.yaml
# (JWT RS256 + local rate limit + access log) and with bench/peers.yaml, alternating rounds,
# medians of requests/s and their ratio. Also the same pipeline with an HS256 token, to show
# what the verified-token cache leaves of RS256's cost, and the pipeline with the rate limit's
# counters in Redis (bench/gateway-redis.yaml, against a redis-server this script starts on
# 127.0.0.1:16379).
# Usage: bench/gateway.sh [ROUNDS] [DURATION_S] [CONNECTIONS]   (needs nginx, wrk, openssl, redis-server)
set -u
ROUNDS=${1:-3}; D=${2:-8}; C=${3:-64}
source "$(dirname "$0")/common.sh"
start_gateway_bench
RS=$(jwt RS256 openssl dgst -sha256 -sign "$W/rsa.pem" -binary)
HS=$(jwt HS256 openssl dgst -sha256 -hmac hs-secret -binary)
sed -e 's/algorithm: RS256/algorithm: HS256/' -e 's|rsa_public_key: .*|secret: hs-secret|' \
  "$ROOT/bench/gateway.yaml" > "$W/gateway-hs.yaml"

measure() { # name config token
  "$STRAIT" run -c "$2" --no-watch --log-level warn & local pid=$!
  wait_ready 18083
  local status
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $3" http://127.0.0.1:18083/)
  [ "$status" = 200 ] || { echo "$1: the token was refused ($status)"; kill $pid; exit 1; }
  local out rps bad
  out=$(wrk -t1 -c"$C" -d"${D}s" -H "Authorization: Bearer $3" http://127.0.0.1:18083/)
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  # Refusals would be cheap answers counted as requests (another process on 18083, a bad token).
  bad=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  kill $pid; wait $pid 2>/dev/null
  printf "round %d %-13s rps=%s%s\n" "$r" "$1" "$rps" "${bad:+ (NOT 2xx: $bad)}"
  RPS[$1]="${RPS[$1]:-} ${rps:-0}"
}
declare -A RPS
for r in $(seq "$ROUNDS"); do
  measure plain "$ROOT/bench/peers.yaml" "$RS"
  measure gateway-rs "$ROOT/bench/gateway.yaml" "$RS"
  measure gateway-hs "$W/gateway-hs.yaml" "$HS"
  measure gateway-redis "$ROOT/bench/gateway-redis.yaml" "$RS"
done
p=$(echo "${RPS[plain]}" | median); g=$(echo "${RPS[gateway-rs]}" | median); h=$(echo "${RPS[gateway-hs]}" | median)
x=$(echo "${RPS[gateway-redis]}" | median)
echo "median rps: plain=$p gateway-rs256=$g gateway-hs256=$h gateway-redis=$x"
awk -v p="$p" -v g="$g" -v h="$h" -v x="$x" 'BEGIN { printf "ratio gateway/plain=%.2f rs256/hs256=%.2f redis/plain=%.2f redis/local=%.2f\n", g/p, g/h, x/p, x/g }'
# The same ratios taken round by round (each against the plain run of its own round, a few
# seconds apart), then their median: steadier when the machine's load moves between rounds.
paired() { # name
  paste -d' ' <(echo "${RPS[$1]}" | tr ' ' '\n' | grep -v '^$') <(echo "${RPS[plain]}" | tr ' ' '\n' | grep -v '^$') |
    awk '$2 > 0 { printf "%s ", $1 / $2 }' | median
}
awk -v g="$(paired gateway-rs)" -v x="$(paired gateway-redis)" \
  'BEGIN { printf "median of per-round ratios: gateway/plain=%.2f redis/plain=%.2f\n", g, x }'
echo "redis counters: $(redis-cli -p 16379 --scan --pattern 'strait:rl:*' | wc -l) keys, $(redis-cli -p 16379 info stats | awk -F: '/total_commands_processed/ {print $2}' | tr -d '\r') commands"
echo "access log lines: $(wc -l < "$W/access.log")"
