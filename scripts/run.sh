#!/usr/bin/env bash
# Starts `chub server` on embedded defaults, waits until it is ready, points
# the CLI of this machine at it (chub login), then keeps serving until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-./data}
LISTEN=${LISTEN:-127.0.0.1:8443}
BIN=./bin/chub
if [ "$(id -u)" != 0 ]; then
  echo "chub server runs instances in containers and needs root: run 'sudo make run'" >&2
  exit 1
fi
"$BIN" server --data-dir "$DATA" --listen "$LISTEN" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
for _ in $(seq 1 600); do
  if ! kill -0 $pid 2>/dev/null; then wait $pid; exit $?; fi
  if [ -f "$DATA/tls/ca.crt" ] && curl -fsS --cacert "$DATA/tls/ca.crt" "https://$LISTEN/healthz" >/dev/null 2>&1; then break; fi
  sleep 0.5
done
"$BIN" login --server "https://$LISTEN" --token-file "$DATA/admin-token" --ca-cert "$DATA/tls/ca.crt"
cat <<MSG

ComputeHub is running at https://$LISTEN (Ctrl-C stops the server; instances keep running).
In another terminal, try:
  export PATH=\$PATH:$(pwd)/bin
  chub computetarget create computeinstance -n instance -s "STANDARD_D3_V2" -v
  chub computetarget computeinstance exec -n instance -- uname -a
  chub computetarget stop computeinstance -n instance -v
  chub computetarget start computeinstance -n instance -v
  chub computetarget restart computeinstance -n instance -v
  chub computetarget delete -n instance -v

MSG
wait $pid
