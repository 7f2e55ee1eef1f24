#!/usr/bin/env bash
# The gateway pipeline against the plain proxy path, same run: Strait with bench/gateway.yaml
# (JWT RS256 + local rate limit + access log) and with bench/peers.yaml, alternating rounds,
# medians of requests/s and their ratio. Also the same pipeline with an HS256 token, to show
# what the verified-token cache leaves of RS256's cost.
# Usage: bench/gateway.sh [ROUNDS] [DURATION_S] [CONNECTIONS]   (needs nginx, wrk, openssl)
set -u
ROUNDS=${1:-3}; D=${2:-8}; C=${3:-64}
source "$(dirname "$0")/common.sh"
write_backend_conf
nginx -c "$W/backend.conf" &
wait_ready $BACK
export BENCH_JWT_DIR="$W" BENCH_LOG="$W/access.log"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/rsa.pem" 2>/dev/null
openssl pkey -in "$W/rsa.pem" -pubout -out "$W/rsa_public.pem"
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
jwt() { # alg key-command...
  local head body sig
  head=$(printf '{"alg":"%s","typ":"JWT"}' "$1" | b64url)
  body=$(printf '{"iss":"rs-key","sub":"bench","exp":%d}' $(( $(date +%s) + 86400 )) | b64url)
  shift
  sig=$(printf '%s.%s' "$head" "$body" | "$@" | b64url)
  printf '%s.%s.%s' "$head" "$body" "$sig"
}
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
  local rps
  rps=$(wrk -t1 -c"$C" -d"${D}s" -H "Authorization: Bearer $3" http://127.0.0.1:18083/ | awk '/Requests\/sec/ {print $2}')
  kill $pid; wait $pid 2>/dev/null
  printf "round %d %-12s rps=%s\n" "$r" "$1" "$rps"
  RPS[$1]="${RPS[$1]:-} $rps"
}
declare -A RPS
for r in $(seq "$ROUNDS"); do
  measure plain "$ROOT/bench/peers.yaml" "$RS"
  measure gateway-rs "$ROOT/bench/gateway.yaml" "$RS"
  measure gateway-hs "$W/gateway-hs.yaml" "$HS"
done
p=$(echo "${RPS[plain]}" | median); g=$(echo "${RPS[gateway-rs]}" | median); h=$(echo "${RPS[gateway-hs]}" | median)
echo "median rps: plain=$p gateway-rs256=$g gateway-hs256=$h"
awk -v p="$p" -v g="$g" -v h="$h" 'BEGIN { printf "ratio gateway/plain=%.2f rs256/hs256=%.2f\n", g/p, g/h }'
echo "access log lines: $(wc -l < "$W/access.log")"
