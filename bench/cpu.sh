#!/usr/bin/env bash
# CPU time per proxied request, Strait vs NGINX vs HAProxy (perf stat task-clock on the proxy
# process during a bounded wrk run). Less sensitive to a noisy machine than requests/s.
# Usage: bench/cpu.sh [ROUNDS] [DURATION_S]   (needs nginx, haproxy, wrk, perf)
set -u
ROUNDS=${1:-3}; D=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STRAIT=${STRAIT:-$ROOT/target/release/strait}
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
cat > "$W/backend.conf" <<CONF
worker_processes 1; daemon off; pid $W/backend.pid; error_log $W/backend.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:18080; location / { return 200 "hello, world\n"; } } }
CONF
cat > "$W/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $W/nginx.pid; error_log $W/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream b { server 127.0.0.1:18080; keepalive 64; }
  server { listen 127.0.0.1:18081; location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
printf 'global\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\nfrontend f\n  bind 127.0.0.1:18082\n  default_backend b\nbackend b\n  http-reuse always\n  server s1 127.0.0.1:18080\n' > "$W/haproxy.cfg"
nginx -c "$W/backend.conf" &
nginx -c "$W/nginx.conf" &
haproxy -f "$W/haproxy.cfg" -q & HP=$!
"$STRAIT" run -c "$ROOT/bench/peers.yaml" --no-watch --log-level warn & SP=$!
for port in 18080 18081 18082 18083; do
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done
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
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
n=$(echo "${US[nginx]}" | median); h=$(echo "${US[haproxy]}" | median); s=$(echo "${US[strait]}" | median)
echo "median us/request: nginx=$n haproxy=$h strait=$s"
awk -v n="$n" -v h="$h" -v s="$s" 'BEGIN { printf "cpu ratio strait/nginx=%.2f strait/haproxy=%.2f (lower is better)\n", s/n, s/h }'
