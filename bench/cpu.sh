#!/usr/bin/env bash
# CPU time per proxied request, Strait vs NGINX vs HAProxy (perf stat task-clock on the proxy
# process during a bounded wrk run). Less sensitive to a noisy machine than requests/s.
# Usage: bench/cpu.sh [ROUNDS] [DURATION_S]   (needs nginx, haproxy, wrk, perf)
set -u
ROUNDS=${1:-3}; D=${2:-5}
source "$(dirname "$0")/common.sh"
write_backend_conf
write_peer_confs
nginx -c "$W/backend.conf" &
nginx -c "$W/nginx.conf" &
haproxy -f "$W/haproxy.cfg" -q & HP=$!
"$STRAIT" run -c "$ROOT/bench/peers.yaml" --no-watch --log-level warn & SP=$!
wait_ready $BACK 18081 18082 18083
NW=$(pgrep -P "$(cat "$W/nginx.pid")" | head -1)
declare -A US
for r in $(seq "$ROUNDS"); do
  for spec in "nginx:18081:$NW" "haproxy:18082:$HP" "strait:18083:$SP"; do
    IFS=: read -r name port pid <<<"$spec"
    perf stat -e task-clock -p "$pid" -o "$W/stat" -- sleep "$D" & PS=$!
    reqs=$(wrk -t1 -c64 -d"${D}s" "http://127.0.0.1:$port/" | awk '/requests in/ {print $1}')
    wait $PS
    ms=$(awk '/task-clock/ {gsub(",","",$1); print $1; exit}' "$W/stat")
    us=$(awk -v ms="$ms" -v n="$reqs" 'BEGIN { printf "%.2f", ms*1000/n }')
    printf "round %d %-8s requests=%-8s cpu=%sms us/request=%s\n" "$r" "$name" "$reqs" "$ms" "$us"
    US[$name]="${US[$name]:-} $us"
  done
done
n=$(echo "${US[nginx]}" | median); h=$(echo "${US[haproxy]}" | median); s=$(echo "${US[strait]}" | median)
echo "median us/request: nginx=$n haproxy=$h strait=$s"
awk -v n="$n" -v h="$h" -v s="$s" 'BEGIN { printf "cpu ratio strait/nginx=%.2f strait/haproxy=%.2f (lower is better)\n", s/n, s/h }'
