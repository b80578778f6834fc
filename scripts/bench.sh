#!/usr/bin/env bash
# Runs `chub bench` against a fresh server on a temporary data dir and adds
# the figures to BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CHUB_BIN:-./bin/chub}
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" server --data-dir "$dir" --listen "127.0.0.1:$port" --log-level warn >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 600); do
  [ -f "$dir/tls/ca.crt" ] && curl -fsS --cacert "$dir/tls/ca.crt" "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 $pid || { cat "$dir/server.log"; exit 1; }
  sleep 0.5
done
CHUB_SERVER="https://127.0.0.1:$port" CHUB_TOKEN=$(cat "$dir/admin-token") CHUB_CA_CERT="$dir/tls/ca.crt" \
  "$BIN" bench --output-file BENCHMARKS.md "$@"
