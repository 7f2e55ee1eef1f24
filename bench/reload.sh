#!/usr/bin/env bash
# Reloads under load: wrk drives keep-alive requests through Strait while the configuration is
# rewritten and SIGHUP is sent every 250 ms; prints wrk's figures and its error counts, which
# must be zero. Usage: bench/reload.sh [DURATION_S] [CONNECTIONS]   (needs nginx, wrk, curl)
set -u
D=${1:-10}; C=${2:-64}
source "$(dirname "$0")/common.sh"
write_backend_conf
config() { # $1: extra route name
  cat <<CONF
workers: 1
listeners:
  - name: bench
    bind: 127.0.0.1:18085
    routes:
      - name: $1
        match: { path: { prefix: /$1 } }
        direct: { status: 200, body: "$1" }
      - forward: { cluster: backend }
clusters:
  - name: backend
    endpoints: [ { address: 127.0.0.1:18080 } ]
CONF
}
config a > "$W/strait.yaml"
nginx -c "$W/backend.conf" &
"$STRAIT" run -c "$W/strait.yaml" --no-watch --log-level warn & SP=$!
wait_ready 18085
wrk -t1 -c"$C" -d"${D}s" http://127.0.0.1:18085/ > "$W/wrk.txt" 2>&1 & WP=$!
reloads=0
end=$((SECONDS + D))
while [ $SECONDS -lt $end ]; do
  if [ $((reloads % 2)) = 0 ]; then config b > "$W/next.yaml"; else config a > "$W/next.yaml"; fi
  mv "$W/next.yaml" "$W/strait.yaml"
  kill -HUP "$SP"; reloads=$((reloads + 1)); sleep 0.25
done
wait $WP
cat "$W/wrk.txt"
errors=$(grep -E "Non-2xx|Socket errors" "$W/wrk.txt" || true)
echo "reloads=$reloads"
if [ -z "$errors" ]; then echo "failed requests: 0"; else echo "failed requests: $errors"; fi
