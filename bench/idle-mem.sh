#!/usr/bin/env bash
# Memory per idle connection, Strait vs NGINX vs HAProxy, one worker each, for three kinds:
#   tls  TLS 1.3 with ALPN http/1.1, one HTTP/1.1 keep-alive request answered, then idle;
#   h2   HTTP/2 over TLS 1.3 (ALPN h2): preface and SETTINGS exchanged, one request answered, then idle;
#   h2c  HTTP/2 with prior knowledge on the cleartext port, one request answered, then idle.
# Each (proxy, kind) gets a fresh proxy process: a few warm-up connections are opened and closed,
# VmRSS of the process holding the connections (the nginx worker, haproxy, strait) is read once it
# stops changing, N connections are opened one after the other (so at most one waits in a listen
# backlog) and held, and VmRSS is read again once settled. The growth divided by the connections
# held is the figure; the client also checks they are all still open after the reading.
# TLS: one ECDSA P-256 certificate made with openssl, each proxy's default ciphers and groups, and
# the peers as ../shared/tools/tls-peers.sh (tls) and h2-peers.sh (h2, h2c) configure them; Strait
# runs bench/tls.yaml and bench/h2c.yaml. Idle timeouts are raised to 300 s everywhere so no
# connection is closed while the N are opened (HAProxy's `timeout client` is 30 s in those tools).
#
# Usage: bench/idle-mem.sh [N] [ROUNDS]   N=4000 connections, ROUNDS=1 (medians when more).
#   STRAIT=path overrides the binary. Needs nginx, haproxy, openssl, python3. Loopback only; every
#   wait is bounded.
set -u
N=${1:-4000}; ROUNDS=${2:-1}
WARM=32
source "$(dirname "$0")/common.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((N * 2 + 200)) ] || { echo "ulimit -n $(ulimit -n) is too low for N=$N" >&2; exit 1; }
[ -x "$STRAIT" ] || { echo "no Strait binary at $STRAIT (build it, or set STRAIT)" >&2; exit 1; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
cat "$W/cert.pem" "$W/key.pem" > "$W/both.pem"
export BENCH_CERT_DIR="$W"
write_backend_conf

# Ports: NGINX 18441 (TLS) / 18091 (h2c), HAProxy 18442 / 18092, Strait 18443 / 18084.
nginx_conf() { # kind
  local listen
  case $1 in
    tls) listen="listen 127.0.0.1:18441 ssl; ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m;" ;;
    # ssl_protocols as tls-peers.sh: NGINX 1.22 leaves TLS 1.3 out of its default.
    h2) listen="listen 127.0.0.1:18441 ssl http2; ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;" ;;
    h2c) listen="listen 127.0.0.1:18091 http2;" ;;
  esac
  cat <<CONF
worker_processes 1; daemon off; pid $W/nginx.pid; error_log $W/nginx.err;
worker_rlimit_nofile 20000;
events { worker_connections 10000; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 300s; http2_max_concurrent_streams 128;
  upstream b { server 127.0.0.1:$BACK; keepalive 64; }
  server { $listen
    location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
}
haproxy_conf() { # kind
  local bind
  case $1 in
    tls) bind="bind 127.0.0.1:18442 ssl crt $W/both.pem" ;;
    h2) bind="bind 127.0.0.1:18442 ssl crt $W/both.pem alpn h2,http/1.1" ;;
    h2c) bind="bind 127.0.0.1:18092 proto h2" ;;
  esac
  cat <<CONF
global
  nbthread 1
  maxconn 9500
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 30s
frontend f
  $bind
  default_backend b
backend b
  http-reuse always
  server s1 127.0.0.1:$BACK
CONF
}
# bench/tls.yaml and bench/h2c.yaml with the idle timeout raised.
sed 's/^server:$/server:\n  timeouts: { idle: 300s }/' "$ROOT/bench/tls.yaml" > "$W/strait-tls.yaml"
sed 's/^server:$/server:\n  timeouts: { idle: 300s }/' "$ROOT/bench/h2c.yaml" > "$W/strait-h2c.yaml"
grep -q 'idle: 300s' "$W/strait-tls.yaml" && grep -q 'idle: 300s' "$W/strait-h2c.yaml" || { echo "could not edit the Strait configs" >&2; exit 1; }

# The client: opens N connections of a kind one after the other, gets one answer on each, holds
# them. Writes "held=... failed=..." to REPORT when all are open, then waits for SIGTERM (at most
# HOLD seconds) and writes "open=..." (connections the proxy has not closed) to REPORT.open.
cat > "$W/client.py" <<'PY'
import os, resource, select, signal, socket, ssl, struct, sys, time
kind, port, n, report, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
try:
    import hpack  # shipped with PyPI h2; without it only an indexed ":status: 200" is recognised
except ImportError:
    hpack = None
ctx = None
if kind in ("tls", "h2"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["h2"] if kind == "h2" else ["http/1.1"])

def recv(s):
    data = s.recv(65536)
    if not data:
        raise ConnectionError("closed by the proxy")
    return data

def exact(s, buf, k):
    while len(buf) < k:
        buf += recv(s)
    return buf[:k], buf[k:]

def h1(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += recv(s)
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 200"):
        raise ValueError(lines[0])
    length, chunked = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    while (not body.endswith(b"0\r\n\r\n")) if chunked else len(body) < length:
        body += recv(s)

def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload

# GET / with :scheme from the static table and :authority as a literal without indexing.
def h2(s, tls):
    block = b"\x82" + (b"\x87" if tls else b"\x86") + b"\x84" + b"\x01\x09localhost"
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0) + frame(1, 0x5, 1, block))
    buf, settings, acked, done, status, headers = b"", False, False, False, None, b""
    while not (settings and acked and done):
        head, buf = exact(s, buf, 9)
        length, ftype, flags, sid = int.from_bytes(head[:3], "big"), head[3], head[4], int.from_bytes(head[5:], "big") & 0x7FFFFFFF
        payload, buf = exact(s, buf, length)
        if ftype == 4 and not flags & 1:
            settings = True
            s.sendall(frame(4, 1, 0))
        elif ftype == 4:
            acked = True
        elif ftype == 6 and not flags & 1:
            s.sendall(frame(6, 1, 0, payload))
        elif ftype == 7 or (ftype == 3 and sid == 1):
            raise ConnectionError(f"frame type {ftype} from the proxy")
        elif ftype in (1, 9) and sid == 1:
            if ftype == 1:
                pad = payload[0] if flags & 0x8 else 0
                payload = payload[(1 if flags & 0x8 else 0) + (5 if flags & 0x20 else 0):len(payload) - pad]
            headers += payload
            if flags & 0x4:
                if hpack:
                    status = dict(hpack.Decoder().decode(headers)).get(":status")
                else:
                    status = "200" if headers[:1] == b"\x88" else headers[:1].hex()
        if sid == 1 and ftype in (0, 1) and flags & 1:
            done = True
    if status != "200":
        raise ValueError(f":status {status}")

held, failed, last_error, info = [], 0, "", ""
start = time.monotonic()
for i in range(n):
    s = None
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if ctx:
            s = ctx.wrap_socket(s, server_hostname="localhost")
            alpn = s.selected_alpn_protocol()
            if s.version() != "TLSv1.3" or alpn not in ((None, "http/1.1") if kind == "tls" else ("h2",)):
                raise ValueError(f"{s.version()} ALPN {alpn}")
            info = f"{s.version()} {s.cipher()[0]} alpn={alpn}"
        (h1(s) if kind == "tls" else h2(s, ctx is not None))
        held.append(s)
    except Exception as error:
        failed += 1
        last_error = repr(error)
        if s:
            s.close()
with open(report + ".tmp", "w") as f:
    f.write(f"held={len(held)} failed={failed} seconds={time.monotonic() - start:.1f} {info} {last_error}\n")
os.rename(report + ".tmp", report)

def finish(*_):
    poller = select.poll()
    for s in held:
        poller.register(s.fileno(), select.POLLRDHUP)
    closed = sum(1 for _, ev in poller.poll(0) if ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR))
    with open(report + ".open", "w") as f:
        f.write(f"open={len(held) - closed}\n")
    os._exit(0)
signal.signal(signal.SIGTERM, finish)
time.sleep(hold)
finish()
PY

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
shmem() { awk '/^RssShmem:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
# VmRSS (KiB) once three readings 0.5 s apart agree (at most 15 s).
settle() {
  local last="" same=0 cur
  for _ in $(seq 30); do
    cur=$(rss "$1")
    if [ "$cur" = "$last" ]; then same=$((same + 1)); [ $same -ge 2 ] && break; else same=0; fi
    last=$cur; sleep 0.5
  done
  echo "${cur:-0}"
}
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# Stops a process started here: TERM, then KILL after 10 s.
stop() {
  kill "$1" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null
}

# Starts a fresh proxy for a kind; sets LEAD (the process started) and HOLDER (the process that holds connections).
start_proxy() { # proxy kind
  local port
  case $1 in
    nginx) nginx_conf "$2" > "$W/nginx.conf"; nginx -c "$W/nginx.conf" & LEAD=$!
      HOLDER=""; for _ in $(seq 100); do HOLDER=$(pgrep -P "$LEAD" | head -1); [ -n "$HOLDER" ] && break; sleep 0.1; done
      port=$([ "$2" = h2c ] && echo 18091 || echo 18441) ;;
    haproxy) haproxy_conf "$2" > "$W/haproxy.cfg"; haproxy -f "$W/haproxy.cfg" -q & LEAD=$!; HOLDER=$LEAD
      port=$([ "$2" = h2c ] && echo 18092 || echo 18442) ;;
    strait) local conf; conf=$([ "$2" = h2c ] && echo strait-h2c || echo strait-tls)
      "$STRAIT" run -c "$W/$conf.yaml" --no-watch --log-level warn & LEAD=$!; HOLDER=$LEAD
      port=$([ "$2" = h2c ] && echo 18084 || echo 18443) ;;
  esac
  PORT=$port
  wait_port "$port" && [ -n "$HOLDER" ]
}

declare -A BPC
measure() { # proxy kind
  local before after info open per cp shm
  rm -f "$W/report" "$W/report.open" "$W/warm" "$W/warm.open"
  if ! start_proxy "$1" "$2"; then echo "  $1 $2: did not start" >&2; stop "$LEAD"; return; fi
  # Warm-up: lazily allocated state (TLS contexts, the upstream connection, HPACK tables) is not counted.
  timeout 60 python3 "$W/client.py" "$2" "$PORT" "$WARM" "$W/warm" 0
  if ! grep -q "held=$WARM " "$W/warm" 2>/dev/null; then
    echo "  $1 $2: warm-up failed: $(cat "$W/warm" 2>/dev/null)" >&2; stop "$LEAD"; return
  fi
  before=$(settle "$HOLDER"); shm=$(shmem "$HOLDER")
  python3 "$W/client.py" "$2" "$PORT" "$N" "$W/report" 600 & cp=$!
  for _ in $(seq $((N / 5 + 120))); do [ -f "$W/report" ] && break; kill -0 $cp 2>/dev/null || break; sleep 0.5; done
  after=$(settle "$HOLDER"); shm=$(( $(shmem "$HOLDER") - shm ))
  info=$(cat "$W/report" 2>/dev/null)
  kill -TERM $cp 2>/dev/null
  for _ in $(seq 100); do [ -f "$W/report.open" ] && break; kill -0 $cp 2>/dev/null || break; sleep 0.1; done
  open=$(sed 's/open=//' "$W/report.open" 2>/dev/null); stop $cp
  stop "$LEAD"
  held=$(echo "$info" | sed -n 's/^held=\([0-9]*\).*/\1/p')
  if [ -z "$held" ] || [ "$held" = 0 ]; then echo "  $1 $2: no connection held: $info" >&2; return; fi
  per=$(( (after - before) * 1024 / held ))
  printf "  %-8s %-4s before=%6s KiB after=%7s KiB (shared +%s) per_conn=%6s B open_at_end=%s | %s\n" \
    "$1" "$2" "$before" "$after" "$shm" "$per" "${open:-?}" "$info"
  [ "${open:-0}" = "$held" ] || echo "  warning: $1 $2: only ${open:-?} of $held connections still open at the end" >&2
  BPC[$1-$2]="${BPC[$1-$2]:-} $per"
}

nginx -c "$W/backend.conf" &
wait_port "$BACK" || { echo "backend did not start" >&2; exit 1; }
echo "idle connections: N=$N per (proxy, kind), rounds=$ROUNDS, one worker per proxy"
for r in $(seq "$ROUNDS"); do
  echo "round $r"
  for kind in tls h2 h2c; do
    for proxy in nginx haproxy strait; do measure "$proxy" "$kind"; done
  done
done

echo "bytes per idle connection (median of $ROUNDS)"
printf "  %-8s %-5s %8s\n" proxy kind bytes
for kind in tls h2 h2c; do
  for proxy in nginx haproxy strait; do
    printf "  %-8s %-5s %8s\n" "$proxy" "$kind" "$(echo "${BPC[$proxy-$kind]:-}" | median)"
  done
done
printf "  %-5s %14s %16s\n" kind strait/nginx strait/haproxy
for kind in tls h2 h2c; do
  awk -v k=$kind -v s="$(echo "${BPC[strait-$kind]:-}" | median)" -v n="$(echo "${BPC[nginx-$kind]:-}" | median)" \
    -v h="$(echo "${BPC[haproxy-$kind]:-}" | median)" \
    'BEGIN { printf "  %-5s %14s %16s\n", k, (n > 0 ? sprintf("%.2f", s/n) : "-"), (h > 0 ? sprintf("%.2f", s/h) : "-") }'
done
