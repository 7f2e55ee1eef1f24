#!/usr/bin/env bash
# Runs every check and test of the workspace. Installs what the tests need when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# jemalloc (the binary's allocator) is built from source with make and a C compiler.
command -v make >/dev/null 2>&1 || need+=(make)
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
# The `redis` policy of `rate_limiting` is tested against real Redis servers.
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# UDP listeners are tested with DNS: a real resolver and a real client.
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq)
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-pip)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Frame-level HTTP/2 probes use the h2 module from PyPI.
if ! python3 -c "import h2" >/dev/null 2>&1; then
  echo "installing: h2 (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check h2 || python3 -m pip install --quiet --break-system-packages h2
fi
# The forward proxy is tested with the seed's client, Python `requests`.
if ! python3 -c "import requests" >/dev/null 2>&1; then
  echo "installing: requests (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check requests || python3 -m pip install --quiet --break-system-packages requests
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
