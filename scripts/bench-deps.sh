#!/usr/bin/env bash
# Installs the peers and load generator the benchmarks compare against (Debian packages).
set -euo pipefail
missing=()
for bin in nginx haproxy wrk curl valgrind redis-server squid tinyproxy; do command -v "$bin" >/dev/null 2>&1 || missing+=("$bin"); done
# bench/forward.sh (and the L4 comparisons) use nginx's stream module.
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
# bench/aggregate.sh runs the seed's Express gateway on Node (express itself comes from npm).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
