#!/usr/bin/env bash
# Layer 4 proxying against HAProxy (`mode tcp`) and NGINX (`stream`), one worker each, in one
# run, interleaved rounds:
#   conns   - short TCP sessions per second: wrk sends each request with `Connection: close`
#             through the proxy to an NGINX backend, so each request is a client connection,
#             an upstream connection and both closes. Each proxy runs with its default, and
#             also with the other end-of-session behaviour, so each is compared at the same
#             one: HAProxy and Strait pass each end on as a half-close and wait for both
#             (`conns-nginx-hc` is NGINX with `proxy_half_close on`); NGINX closes the session
#             at the first end (`conns-strait-fe` is Strait with `half_close: false`);
#   bulk    - one 512 MiB download (curl) through one TCP session, MiB/s;
#   sni     - TLS passthrough sessions per second: the same through a listener that reads the
#             server name from the ClientHello and relays to a TLS origin by name (HAProxy
#             `req.ssl_sni`, NGINX `ssl_preread`), each request a full TLS handshake with the
#             origin.
# Strait runs bench/l4.yaml. Every proxy runs on CPU 1 and the origin and clients on CPU 0
# (taskset), so each gets the same one core; PIN=0 lets them float. On this layout the
# origin and clients on CPU 0 can set the pace before any proxy's core is full, so each round
# also reads the proxy's CPU time (/proc/PID/stat): microseconds per session, or CPU
# milliseconds per MiB for bulk; lower is better.
# Usage: bench/l4.sh [ROUNDS] [DURATION_S] [CONNECTIONS]   (needs nginx with the stream module,
# haproxy, wrk, curl, openssl: scripts/bench-deps.sh installs them)
set -u
ROUNDS=${1:-3}; D=${2:-5}; C=${3:-32}
source "$(dirname "$0")/common.sh"
if [ "${PIN:-1}" = 1 ]; then PROXY_CPU="taskset -c 1"; LOAD_CPU="taskset -c 0"; else PROXY_CPU=""; LOAD_CPU=""; fi
head -c $((512 << 20)) /dev/zero > "$W/big.bin"
chmod 755 "$W"; chmod 644 "$W/big.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$W/origin.key" -out "$W/origin.crt" 2>/dev/null
chmod 644 "$W/origin.key"
cat > "$W/origin.conf" <<CONF
worker_processes 1; daemon off; pid $W/origin.pid; error_log $W/origin.err;
worker_rlimit_nofile 20000;
events { worker_connections 10000; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$BACK;
    location = /big.bin { root $W; }
    location / { return 200 "hello, world\n"; } }
  server { listen 127.0.0.1:18443 ssl; ssl_certificate $W/origin.crt; ssl_certificate_key $W/origin.key;
    location / { return 200 "hello, world\n"; } } }
CONF
cat > "$W/stream.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1; daemon off; pid $W/stream.pid; error_log $W/stream.err;
worker_rlimit_nofile 20000;
events { worker_connections 10000; }
stream {
  server { listen 127.0.0.1:14002; proxy_pass 127.0.0.1:$BACK; }
  server { listen 127.0.0.1:14022; proxy_pass 127.0.0.1:$BACK; proxy_half_close on; }
  map \$ssl_preread_server_name \$by_name { localhost 127.0.0.1:18443; default 127.0.0.1:9; }
  server { listen 127.0.0.1:14012; ssl_preread on; proxy_pass \$by_name; } }
CONF
cat > "$W/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 9500
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend tcp
  bind 127.0.0.1:14001
  default_backend backend
backend backend
  server s1 127.0.0.1:$BACK
frontend passthrough
  bind 127.0.0.1:14011
  tcp-request inspect-delay 5s
  tcp-request content accept if { req.ssl_hello_type 1 }
  use_backend tls-origin if { req.ssl_sni -i localhost }
backend tls-origin
  server t1 127.0.0.1:18443
CONF
$LOAD_CPU nginx -c "$W/origin.conf" &
$PROXY_CPU nginx -c "$W/stream.conf" &
$PROXY_CPU haproxy -f "$W/haproxy.cfg" >/dev/null 2>&1 &
$PROXY_CPU "$STRAIT" run -c "$ROOT/bench/l4.yaml" --no-watch --log-level warn & STRAIT_PID=$!
wait_ready $BACK 14001 14002 14003 14004 14022
for port in 18443 14011 14012 14013; do
  for _ in $(seq 100); do curl -sk -o /dev/null "https://localhost:$port/" && break; sleep 0.1; done
done

NGINX_PID=$(pgrep -P "$(cat "$W/stream.pid")" | head -1)
HAPROXY_PID=$(pgrep -f "haproxy -f $W/haproxy.cfg" | head -1)
pid_of() { case $1 in *haproxy) echo "$HAPROXY_PID" ;; *nginx*) echo "$NGINX_PID" ;; *) echo "$STRAIT_PID" ;; esac; }
# CPU ticks (user + system) of a process.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
declare -A R CPU
record() { R[$1]="${R[$1]:-} $2"; }
load() { # name url
  local out rps bad before after requests us pid
  pid=$(pid_of "$1"); before=$(ticks "$pid")
  out=$($LOAD_CPU wrk -t1 -c"$C" -d"${D}s" -H "Connection: close" "$2" 2>&1)
  after=$(ticks "$pid")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  us=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="${requests:-0}" 'BEGIN { printf "%.2f", n ? t * 1e6 / hz / n : 0 }')
  bad=$(echo "$out" | grep -E "Non-2xx|Socket errors" | tr '\n' ' ')
  printf "round %d %-16s rps=%-10s cpu_us/session=%-6s %s\n" "$r" "$1" "${rps:-0}" "$us" "$bad"
  record "$1" "${rps:-0}"; CPU[$1]="${CPU[$1]:-} $us"
}
bulk() { # name port
  local out speed before after ms pid
  pid=$(pid_of "$1"); before=$(ticks "$pid")
  out=$($LOAD_CPU curl -s --max-time 60 -o /dev/null -w '%{http_code} %{size_download} %{speed_download}' "http://127.0.0.1:$2/big.bin")
  after=$(ticks "$pid")
  speed=$(echo "$out" | awk -v want=$((512 << 20)) '$1 == 200 && $2 == want { printf "%.0f", $3 / 1048576; next } { print 0 }')
  ms=$(awk -v t=$((after - before)) -v hz="$HZ" 'BEGIN { printf "%.3f", t * 1000 / hz / 512 }')
  printf "round %d %-16s MiB/s=%s cpu_ms/MiB=%s (curl: %s)\n" "$r" "$1" "$speed" "$ms" "$out"
  record "$1" "$speed"; CPU[$1]="${CPU[$1]:-} $ms"
}
for r in $(seq "$ROUNDS"); do
  # Each round starts the short-session loads one place further along, so no proxy always
  # follows the same one (each load leaves tens of thousands of sockets in TIME_WAIT).
  for i in $(seq 0 4); do
    case $(( (i + r) % 5 )) in
      0) load conns-haproxy http://127.0.0.1:14001/ ;; 1) load conns-nginx http://127.0.0.1:14002/ ;;
      2) load conns-strait http://127.0.0.1:14003/ ;; 3) load conns-nginx-hc http://127.0.0.1:14022/ ;;
      4) load conns-strait-fe http://127.0.0.1:14004/ ;;
    esac
  done
  bulk bulk-haproxy 14001; bulk bulk-nginx 14002; bulk bulk-strait 14003
  load sni-haproxy https://localhost:14011/; load sni-nginx https://localhost:14012/; load sni-strait https://localhost:14013/
done
m() { echo "${R[$1]}" | median; }
c() { echo "${CPU[$1]}" | median; }
for k in conns-haproxy conns-nginx conns-strait conns-nginx-hc conns-strait-fe bulk-haproxy bulk-nginx bulk-strait sni-haproxy sni-nginx sni-strait; do
  printf "median %-16s %-10s cpu %s\n" "$k" "$(m "$k")" "$(c "$k")"
done
awk -v ch="$(c conns-haproxy)" -v cn="$(c conns-nginx)" -v cs="$(c conns-strait)" \
    -v bh="$(c bulk-haproxy)" -v bn="$(c bulk-nginx)" -v bs="$(c bulk-strait)" \
    -v sh="$(c sni-haproxy)" -v sn="$(c sni-nginx)" -v ss="$(c sni-strait)" '
function min(a, b) { return a < b ? a : b }
BEGIN {
  printf "cpu ratio (strait / the lower; below 1 is less CPU) conns=%.2f bulk=%.2f sni/haproxy=%.2f\n", cs / min(ch, cn), bs / min(bh, bn), ss / sh
}'
awk -v ch="$(c conns-haproxy)" -v nh="$(c conns-nginx-hc)" -v cs="$(c conns-strait)" \
    -v cn="$(c conns-nginx)" -v fe="$(c conns-strait-fe)" -v rh="$(m conns-haproxy)" -v rnh="$(m conns-nginx-hc)" \
    -v rs="$(m conns-strait)" -v rn="$(m conns-nginx)" -v rfe="$(m conns-strait-fe)" '
function min(a, b) { return a < b ? a : b }
function max(a, b) { return a > b ? a : b }
BEGIN {
  printf "conns with half-close: strait/best=%.2f (haproxy %.2f, nginx-hc %.2f), cpu strait/lower=%.2f\n", rs / max(rh, rnh), rs / rh, rs / rnh, cs / min(ch, nh)
  printf "conns closed at the first end: strait-fe/nginx=%.2f, cpu %.2f\n", rfe / rn, fe / cn
}'
# The same taken round by round (loads a few seconds apart), then their median: steadier when
# the machine's load moves between rounds.
paired() { # a b
  paste -d' ' <(echo "${R[$1]}" | tr ' ' '\n' | grep -v '^$') <(echo "${R[$2]}" | tr ' ' '\n' | grep -v '^$') |
    awk '$2 > 0 { printf "%s ", $1 / $2 }' | median
}
awk -v h="$(paired conns-strait conns-haproxy)" -v n="$(paired conns-strait conns-nginx)" \
    -v hc="$(paired conns-strait conns-nginx-hc)" -v fe="$(paired conns-strait-fe conns-nginx)" \
  'BEGIN { printf "median of per-round conns ratios: strait/haproxy=%.2f strait/nginx=%.2f strait/nginx-hc=%.2f strait-fe/nginx=%.2f\n", h, n, hc, fe }'
awk -v ch="$(m conns-haproxy)" -v cn="$(m conns-nginx)" -v c="$(m conns-strait)" \
    -v bh="$(m bulk-haproxy)" -v bn="$(m bulk-nginx)" -v b="$(m bulk-strait)" \
    -v sh="$(m sni-haproxy)" -v sn="$(m sni-nginx)" -v s="$(m sni-strait)" '
function max(a, b) { return a > b ? a : b }
BEGIN {
  printf "ratio conns strait/best=%.2f (haproxy %.2f, nginx %.2f)\n", c / max(ch, cn), c / ch, c / cn
  printf "ratio bulk strait/best=%.2f (haproxy %.2f, nginx %.2f)\n", b / max(bh, bn), b / bh, b / bn
  printf "ratio sni strait/haproxy=%.2f (nginx %.2f)\n", s / sh, s / sn
}'
