#!/usr/bin/env bash
# CPU time per request over TLS and HTTP/2, Strait vs NGINX vs HAProxy: the proxy process's
# user + system time (from /proc) during a bounded load, divided by the requests it served.
# Where one load generator is the bottleneck, requests/s hide how much CPU each proxy needs;
# this does not. Modes: https keep-alive (wrk), a full TLS handshake per request (wrk with
# "Connection: close"), HTTP/2 over TLS and h2c (h2load, 16 connections x 10 streams).
# Usage: bench/tls-cpu.sh [ROUNDS] [DURATION_S]   (needs nginx, haproxy, wrk, h2load, openssl)
set -u
ROUNDS=${1:-3}; D=${2:-5}
source "$(dirname "$0")/common.sh"
export BENCH_CERT_DIR="$W"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
cat "$W/cert.pem" "$W/key.pem" > "$W/both.pem"
write_backend_conf
# The peers as ../shared/tools/tls-peers.sh and h2-peers.sh configure them, on the same ports.
cat > "$W/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $W/nginx.pid; error_log $W/nginx.err;
worker_rlimit_nofile 20000;
events { worker_connections 10000; }
http { access_log off; keepalive_requests 1000000; http2_max_concurrent_streams 128;
  upstream b { server 127.0.0.1:$BACK; keepalive 64; }
  server { listen 127.0.0.1:18441 ssl http2; ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m;
    location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.0.1:18091 http2;
    location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
cat > "$W/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 9500
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend ft
  bind 127.0.0.1:18442 ssl crt $W/both.pem alpn h2,http/1.1
  default_backend b
frontend fc
  bind 127.0.0.1:18092 proto h2
  default_backend b
backend b
  http-reuse always
  server s1 127.0.0.1:$BACK
CONF
nginx -c "$W/backend.conf" &
nginx -c "$W/nginx.conf" &
haproxy -f "$W/haproxy.cfg" -q & HP=$!
"$STRAIT" run -c "$ROOT/bench/tls.yaml" --no-watch --log-level warn & ST=$!
"$STRAIT" run -c "$ROOT/bench/h2c.yaml" --no-watch --log-level warn & SC=$!
wait_ready $BACK
for port in 18441 18442 18443; do
  for _ in $(seq 100); do curl -sk -o /dev/null "https://127.0.0.1:$port/" && break; sleep 0.1; done
done
for port in 18091 18092 18084; do
  for _ in $(seq 100); do curl -s --http2-prior-knowledge -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done
NW=$(pgrep -P "$(cat "$W/nginx.pid")" | head -1)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, in clock ticks
HZ=$(getconf CLK_TCK)
load() { # mode scheme://host:port -> requests served
  case $1 in
    keepalive) wrk -t1 -c64 -d"${D}s" "$2/" | awk '/requests in/ {print $1}' ;;
    handshake) wrk -t1 -c64 -d"${D}s" -H "Connection: close" "$2/" | awk '/requests in/ {print $1}' ;;
    h2*) timeout $((D + 20)) h2load -D "$D" -c16 -m10 -t1 "$2/" 2>&1 | awk '/^requests:/ {print $8}' ;;
  esac
}
declare -A US
MODES="keepalive handshake h2-tls h2c"
for r in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    case $mode in
      h2c) specs="nginx:http://127.0.0.1:18091:$NW haproxy:http://127.0.0.1:18092:$HP strait:http://127.0.0.1:18084:$SC" ;;
      *) specs="nginx:https://127.0.0.1:18441:$NW haproxy:https://127.0.0.1:18442:$HP strait:https://127.0.0.1:18443:$ST" ;;
    esac
    for spec in $specs; do
      name=${spec%%:*}; rest=${spec#*:}; pid=${rest##*:}; url=${rest%:*}
      before=$(cpu_ticks "$pid")
      reqs=$(load "$mode" "$url")
      after=$(cpu_ticks "$pid")
      us=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="${reqs:-0}" 'BEGIN { printf "%.2f", (n > 0) ? t * 1e6 / hz / n : 0 }')
      printf "round %d %-9s %-8s requests=%-8s us/request=%s\n" "$r" "$mode" "$name" "${reqs:-0}" "$us"
      US[$mode-$name]="${US[$mode-$name]:-} $us"
    done
  done
done
for mode in $MODES; do
  n=$(echo "${US[$mode-nginx]}" | median); h=$(echo "${US[$mode-haproxy]}" | median)
  s=$(echo "${US[$mode-strait]}" | median)
  awk -v m="$mode" -v n="$n" -v h="$h" -v s="$s" 'BEGIN { b = (n < h) ? n : h;
    printf "%-9s median us/request nginx=%s haproxy=%s strait=%s  best-peer/strait=%.2f (higher is better)\n", m, n, h, s, b / s }'
done
