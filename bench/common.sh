# Shared by the benchmark scripts (sourced, not run): a work directory cleaned up on exit, the
# peers' configurations, readiness polling and medians. Everything listens on 127.0.0.1 only.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STRAIT=${STRAIT:-$ROOT/target/release/strait}
BACK=18080
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT

# The backend: one NGINX worker answering 13 bytes on $BACK.
write_backend_conf() {
  cat > "$W/backend.conf" <<CONF
worker_processes 1; daemon off; pid $W/backend.pid; error_log $W/backend.err;
worker_rlimit_nofile 20000;
events { worker_connections 10000; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$BACK; location / { return 200 "hello, world\n"; } } }
CONF
}

# The peers: NGINX on 18081 and HAProxy on 18082, one worker each, both reusing connections.
write_peer_confs() {
  cat > "$W/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $W/nginx.pid; error_log $W/nginx.err;
worker_rlimit_nofile 20000;
events { worker_connections 10000; }
http { access_log off; keepalive_requests 1000000;
  upstream b { server 127.0.0.1:$BACK; keepalive 64; }
  server { listen 127.0.0.1:18081; location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
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
frontend f
  bind 127.0.0.1:18082
  default_backend b
backend b
  http-reuse always
  server s1 127.0.0.1:$BACK
CONF
}

# A redis-server on 127.0.0.1:PORT with nothing saved, ready when this returns (exits if not).
start_redis() { # port
  redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --dir "$W" --logfile "$W/redis.log" &
  for _ in $(seq 100); do [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] || { echo "redis-server did not start"; exit 1; }
}

# For the gateway configurations: an RSA key pair made now in $W (BENCH_JWT_DIR, which
# bench/gateway*.yaml read), the access log in $W, and `jwt ALG KEY-COMMAND...`, which prints a
# token of the consumer `rs-key` valid for a day, signed by the command.
gateway_keys() {
  export BENCH_JWT_DIR="$W" BENCH_LOG="$W/access.log"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/rsa.pem" 2>/dev/null
  openssl pkey -in "$W/rsa.pem" -pubout -out "$W/rsa_public.pem"
}
# What both gateway benchmarks stand on: the backend, redis-server on 127.0.0.1:16379 (for
# bench/gateway-redis.yaml) and the keys (gateway_keys).
start_gateway_bench() {
  write_backend_conf
  nginx -c "$W/backend.conf" &
  wait_ready $BACK
  start_redis 16379
  gateway_keys
}
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
jwt() { # alg key-command...
  local head body sig
  head=$(printf '{"alg":"%s","typ":"JWT"}' "$1" | b64url)
  body=$(printf '{"iss":"rs-key","sub":"bench","exp":%d}' $(( $(date +%s) + 86400 )) | b64url)
  shift
  sig=$(printf '%s.%s' "$head" "$body" | "$@" | b64url)
  printf '%s.%s.%s' "$head" "$body" "$sig"
}

# Polls each port until it answers (at most 10 s each).
wait_ready() {
  for port in "$@"; do
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  done
}

# Median of the whitespace-separated numbers on standard input.
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
