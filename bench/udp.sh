#!/usr/bin/env bash
# UDP datagrams per second through Strait and NGINX `stream` (`listen ... udp`), one worker
# each, to the same UDP echo backend, in one run, interleaved rounds. The load generator
# (bench/udp_load.rs, built here with rustc -O) runs SOCKETS clients, each a session of its
# own keeping WINDOW datagrams of 64 bytes outstanding; a round counts the replies that came
# back within DURATION_S. Sessions last the whole round (no `responses`, NGINX's default
# `proxy_responses`), so this measures the per-datagram path, not session setup.
# Besides datagrams per second, each round reads the proxy's CPU time (/proc/PID/stat), and
# prints microseconds of proxy CPU per datagram: the echo and the clients share the machine,
# so the rate can be bound by them, while the CPU per datagram is the proxy's own.
# The proxies run on CPU 1 and the echo and clients on CPU 0 (taskset); PIN=0 lets them float.
# Usage: bench/udp.sh [ROUNDS] [DURATION_S] [SOCKETS] [WINDOW]   (needs nginx with the stream
# module: scripts/bench-deps.sh installs it; rustc; build Strait first: cargo build --release)
set -u
ROUNDS=${1:-5}; D=${2:-5}; SOCKETS=${3:-4}; WINDOW=${4:-64}
source "$(dirname "$0")/common.sh"
if [ "${PIN:-1}" = 1 ]; then PROXY_CPU="taskset -c 1"; LOAD_CPU="taskset -c 0"; else PROXY_CPU=""; LOAD_CPU=""; fi
ECHO=18095; NGINX_PORT=18096; STRAIT_PORT=18097
LOAD=${UDP_LOAD:-$W/udp_load}
[ -x "$LOAD" ] || rustc --edition 2021 -O -o "$LOAD" "$ROOT/bench/udp_load.rs" || exit 1
cat > "$W/nginx-udp.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1; daemon off; pid $W/nginx-udp.pid; error_log $W/nginx-udp.err;
worker_rlimit_nofile 20000;
events { worker_connections 10000; }
stream {
  upstream echo { server 127.0.0.1:$ECHO; }
  server { listen 127.0.0.1:$NGINX_PORT udp; proxy_pass echo; proxy_timeout 30s; }
}
CONF
cat > "$W/strait-udp.yaml" <<CONF
workers: 1
listeners:
  - name: udp
    bind: 127.0.0.1:$STRAIT_PORT
    udp: { cluster: echo, idle_timeout: 30s }
clusters:
  - name: echo
    endpoints: [ { address: "127.0.0.1:$ECHO" } ]
CONF
$LOAD_CPU "$LOAD" echo 127.0.0.1:$ECHO &
$PROXY_CPU nginx -c "$W/nginx-udp.conf" &
$PROXY_CPU "$STRAIT" run -c "$W/strait-udp.yaml" --no-watch --log-level warn & SP=$!
# Ready once a datagram comes back through each (at most 10 s each).
for port in $NGINX_PORT $STRAIT_PORT; do
  for _ in $(seq 50); do "$LOAD" probe 127.0.0.1:$port && break; done
done
NW=$(pgrep -P "$(cat "$W/nginx-udp.pid")" | head -1)
# CPU ticks (user + system) of a process.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

declare -A R US
round() { # name port pid
  local before after out rate replies us
  before=$(ticks "$3")
  out=$($LOAD_CPU "$LOAD" send 127.0.0.1:"$2" "$SOCKETS" "$WINDOW" "$D")
  after=$(ticks "$3")
  rate=$(echo "$out" | sed -n 's/.* rate=\([0-9]*\).*/\1/p')
  replies=$(echo "$out" | sed -n 's/.* replies=\([0-9]*\).*/\1/p')
  us=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="${replies:-0}" 'BEGIN { printf "%.2f", n ? t * 1e6 / hz / n : 0 }')
  printf "round %d %-7s datagrams/s=%-8s proxy_cpu_us/datagram=%s (%s)\n" "$r" "$1" "${rate:-0}" "$us" "$out"
  R[$1]="${R[$1]:-} ${rate:-0}"; US[$1]="${US[$1]:-} $us"
}
for r in $(seq "$ROUNDS"); do
  round nginx $NGINX_PORT "$NW"
  round strait $STRAIT_PORT "$SP"
done
n=$(echo "${R[nginx]}" | median); s=$(echo "${R[strait]}" | median)
nu=$(echo "${US[nginx]}" | median); su=$(echo "${US[strait]}" | median)
printf "median datagrams/s nginx=%s strait=%s\n" "$n" "$s"
printf "median proxy_cpu_us/datagram nginx=%s strait=%s\n" "$nu" "$su"
awk -v n="$n" -v s="$s" -v nu="$nu" -v su="$su" 'BEGIN {
  printf "ratio datagrams/s strait/nginx=%.2f\n", s / n
  if (su > 0) printf "ratio cpu_per_datagram nginx/strait=%.2f\n", nu / su
}'
