#!/usr/bin/env bash
# The forward proxy against Squid and tinyproxy, one worker each, in one run, interleaved rounds:
#   plain   - absolute-form GETs through the proxy (keep-alive client, origin on 127.0.0.1:18080);
#   hits    - the same GET of a cacheable object (Squid with its memory cache, Strait with
#             proxy_cache; tinyproxy has no cache);
#   tunnels - CONNECT tunnels per second: each opens a tunnel to an origin that sends one byte
#             and closes (nginx stream on 127.0.0.1:18090), so each request is a connection,
#             a CONNECT, an origin connection and both closes;
#   bulk    - one CONNECT tunnel carrying a 512 MiB download (curl -p), MiB/s.
# Strait runs bench/forward.yaml (plain), the same with proxy_cache (hits) and with the stream
# origin on its SSRF allow list (tunnels, bulk).
# Every proxy runs on CPU 1 and the origin and clients on CPU 0 (taskset), so each proxy gets
# the same one core whatever its model (tinyproxy runs a thread per connection, Squid and
# Strait one worker); PIN=0 lets them float, and WORKERS=N gives Strait N workers (with PIN=0
# and WORKERS=2, each proxy runs as packaged on the whole machine).
# Usage: bench/forward.sh [ROUNDS] [DURATION_S] [CONNECTIONS]   (needs nginx with the stream
# module, squid, tinyproxy, wrk, curl: scripts/bench-deps.sh installs them)
set -u
ROUNDS=${1:-3}; D=${2:-5}; C=${3:-32}
source "$(dirname "$0")/common.sh"
if [ "${PIN:-1}" = 1 ]; then PROXY_CPU="taskset -c 1"; LOAD_CPU="taskset -c 0"; else PROXY_CPU=""; LOAD_CPU=""; fi
head -c $((512 << 20)) /dev/zero > "$W/big.bin"
# The origin's workers run unprivileged: they must be able to read the file.
chmod 755 "$W"; chmod 644 "$W/big.bin"
cat > "$W/origin.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1; daemon off; pid $W/origin.pid; error_log $W/origin.err;
worker_rlimit_nofile 20000;
events { worker_connections 10000; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$BACK;
    location = /big.bin { root $W; }
    location = /cached { add_header Cache-Control "public, max-age=3600"; return 200 "hello, cache\n"; }
    location / { add_header Cache-Control no-store; return 200 "hello, world\n"; } } }
stream { server { listen 127.0.0.1:18090; return "x"; } }
CONF
cat > "$W/squid.conf" <<CONF
http_port 127.0.0.1:13128
acl localnet src 127.0.0.0/8
http_access allow localnet
http_access deny all
cache_mem 64 MB
maximum_object_size_in_memory 1 MB
workers 1
pid_filename $W/squid.pid
access_log none
cache_log $W/squid-cache.log
coredump_dir $W
shutdown_lifetime 1 seconds
CONF
cat > "$W/tinyproxy.conf" <<CONF
Port 13129
Listen 127.0.0.1
Timeout 60
MaxClients 4096
Allow 127.0.0.1
LogLevel Critical
PidFile "$W/tp.pid"
CONF
WORKERS=${WORKERS:-1}
sed -e "s/workers: 1/workers: $WORKERS/" "$ROOT/bench/forward.yaml" > "$W/forward.yaml"
sed -e 's/13130/13131/' -e 's/      - forward_proxy:/      - filters: [{ name: proxy_cache }]\n        forward_proxy:/' \
  "$W/forward.yaml" > "$W/forward-cache.yaml"
# Tunnels also reach the stream origin on 18090: the guard lets it through, and an access
# rule lets tunnels go to both origin ports (without one, tunnels go to port 443 only).
sed -e 's/13130/13132/' -e 's/allow: \["127.0.0.1:18080"\]/allow: ["127.0.0.1:18080", "127.0.0.1:18090"]/' \
  -e 's/^    routes:/    filters:\n      - name: http_access\n        config: { acls: { origins: { port: [18080, 18090] } }, rules: [{ allow: [origins] }] }\n    routes:/' \
  "$W/forward.yaml" > "$W/forward-tunnels.yaml"
cat > "$W/plain.lua" <<'LUA'
request = function() return "GET http://127.0.0.1:18080/ HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n" end
LUA
cat > "$W/hit.lua" <<'LUA'
request = function() return "GET http://127.0.0.1:18080/cached HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n" end
LUA
cat > "$W/tunnel.lua" <<'LUA'
request = function() return "CONNECT 127.0.0.1:18090 HTTP/1.1\r\nHost: 127.0.0.1:18090\r\n\r\n" end
LUA
$LOAD_CPU nginx -c "$W/origin.conf" &
$PROXY_CPU squid -N -f "$W/squid.conf" >/dev/null 2>&1 &
$PROXY_CPU tinyproxy -d -c "$W/tinyproxy.conf" >/dev/null 2>&1 &
$PROXY_CPU "$STRAIT" run -c "$W/forward.yaml" --no-watch --log-level warn &
$PROXY_CPU "$STRAIT" run -c "$W/forward-cache.yaml" --no-watch --log-level warn &
$PROXY_CPU "$STRAIT" run -c "$W/forward-tunnels.yaml" --no-watch --log-level warn &
wait_ready $BACK 13128 13129 13130 13131 13132

declare -A R
record() { R[$1]="${R[$1]:-} $2"; }
load() { # name port script
  local out rps bad
  out=$($LOAD_CPU wrk -t1 -c"$C" -d"${D}s" -s "$W/$3.lua" "http://127.0.0.1:$2" 2>&1)
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  bad=$(echo "$out" | grep -E "Non-2xx" | tr '\n' ' ')
  printf "round %d %-18s rps=%-10s %s\n" "$r" "$1" "${rps:-0}" "$bad"
  # Refusals are cheap answers, not the work measured: such a round counts as 0.
  [ -n "$bad" ] && rps=0
  record "$1" "${rps:-0}"
}
bulk() { # name port
  local speed
  out=$($LOAD_CPU curl -s -p -x "http://127.0.0.1:$2" --max-time 60 -o /dev/null -w '%{http_code} %{size_download} %{speed_download}' "http://127.0.0.1:$BACK/big.bin")
  speed=$(echo "$out" | awk -v want=$((512 << 20)) '$1 == 200 && $2 == want { printf "%.0f", $3 / 1048576; next } { print 0 }')
  printf "round %d %-18s MiB/s=%s (curl: %s)\n" "$r" "$1" "$speed" "$out"
  record "$1" "$speed"
}
# Warm both caches.
curl -s -o /dev/null -x http://127.0.0.1:13128 "http://127.0.0.1:$BACK/cached"
curl -s -o /dev/null -x http://127.0.0.1:13131 "http://127.0.0.1:$BACK/cached"
for r in $(seq "$ROUNDS"); do
  load plain-squid 13128 plain; load plain-tinyproxy 13129 plain; load plain-strait 13130 plain
  load hits-squid 13128 hit; load hits-strait 13131 hit
  load tunnels-squid 13128 tunnel; load tunnels-tinyproxy 13129 tunnel; load tunnels-strait 13132 tunnel
  bulk bulk-squid 13128; bulk bulk-tinyproxy 13129; bulk bulk-strait 13132
done
m() { echo "${R[$1]}" | median; }
for k in plain-squid plain-tinyproxy plain-strait hits-squid hits-strait tunnels-squid tunnels-tinyproxy tunnels-strait bulk-squid bulk-tinyproxy bulk-strait; do
  printf "median %-18s %s\n" "$k" "$(m "$k")"
done
awk -v ps="$(m plain-squid)" -v pt="$(m plain-tinyproxy)" -v p="$(m plain-strait)" \
    -v hs="$(m hits-squid)" -v h="$(m hits-strait)" \
    -v ts="$(m tunnels-squid)" -v tt="$(m tunnels-tinyproxy)" -v t="$(m tunnels-strait)" \
    -v bs="$(m bulk-squid)" -v bt="$(m bulk-tinyproxy)" -v b="$(m bulk-strait)" '
function max(a, b) { return a > b ? a : b }
BEGIN {
  printf "ratio plain strait/squid=%.2f strait/tinyproxy=%.2f\n", p / ps, p / pt
  printf "ratio hits strait/squid=%.2f\n", h / hs
  printf "ratio tunnels strait/best=%.2f\n", t / max(ts, tt)
  printf "ratio bulk strait/best=%.2f\n", b / max(bs, bt)
}'
