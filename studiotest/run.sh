#!/usr/bin/env bash
# Studio in a real browser: starts a throw-away chub server (HTTPS, self-signed local CA), makes
# the users the tests sign in as, and drives Debian's Chromium (/usr/bin/chromium) with
# playwright-core through the Studio pages. Screenshots go to studiotest/screenshots/.
#
#   CHUB_BIN=path/to/chub bash studiotest/run.sh        (default: ../bin/chub relative to studiotest/)
#   bash studiotest/run.sh studiotest/test/02-reader.test.js   (only these test files)
#   bash studiotest/run.sh --test-name-pattern=terminal        (other arguments go to node --test)
#
# Builds nothing. Must run as root (the server uses real local containers).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHUB_BIN="${CHUB_BIN:-$HERE/../bin/chub}"
CHUB_BIN_GIVEN="$CHUB_BIN"
case "$CHUB_BIN" in /*) ;; *) CHUB_BIN="$(cd "$(dirname "$CHUB_BIN")" 2>/dev/null && pwd)/$(basename "$CHUB_BIN")" ;; esac
PAGE_SIZE=2
CHROMIUM="${CHUB_CHROMIUM:-/usr/bin/chromium}"
STARTUP_TIMEOUT="${CHUB_STARTUP_TIMEOUT:-180}"

if [[ ! -x "$CHUB_BIN" ]]; then
  echo "studiotest: no chub binary at $CHUB_BIN_GIVEN (build it: go build -o bin/chub ./cmd/chub, or set CHUB_BIN)" >&2
  exit 1
fi
command -v node >/dev/null || { echo "studiotest: node is not installed" >&2; exit 1; }
command -v curl >/dev/null || { echo "studiotest: curl is not installed" >&2; exit 1; }
[[ -x "$CHROMIUM" ]] || { echo "studiotest: no Chromium at $CHROMIUM (apt-get install chromium, or make setup)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/chub-studiotest.XXXXXX")"
DATA="$WORK/data"
LOG="$WORK/server.log"
mkdir -m 0700 "$DATA"
SERVER_PID=""

cleanup() {
  local rc=$?
  set +e
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    if [[ -n "${CHUB_SERVER:-}" && -n "${CHUB_TOKEN:-}" ]]; then
      # Safety net: delete whatever the tests left behind, so no instance outlives the run.
      (cd "$HERE" && timeout 120 node lib/sweep.js) || echo "studiotest: sweep of leftover instances failed" >&2
    fi
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 300); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "studiotest: server did not stop within 30s of SIGTERM; sending SIGKILL" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null
    fi
    wait "$SERVER_PID" 2>/dev/null
  fi
  if [[ $rc -ne 0 && -f "$LOG" ]]; then
    echo "---- chub server log (last 80 lines) ----" >&2
    tail -n 80 "$LOG" >&2
    echo "---- end of server log ----" >&2
  fi
  # Never cross into a mount (an instance left running could have its disks mounted here).
  if grep -qF " $WORK/" /proc/mounts 2>/dev/null; then
    echo "studiotest: mounts remain under $WORK (an instance outlived the run); leaving it in place" >&2
  else
    rm -rf --one-file-system "$WORK" 2>/dev/null ||
      echo "studiotest: could not remove $WORK completely" >&2
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
URL="https://127.0.0.1:$PORT"

"$CHUB_BIN" server --data-dir "$DATA" --listen "127.0.0.1:$PORT" --page-size "$PAGE_SIZE" >"$LOG" 2>&1 &
SERVER_PID=$!

CA="$DATA/tls/ca.crt"
ready=""
for _ in $(seq 1 $((STARTUP_TIMEOUT * 5))); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "studiotest: chub server exited during startup" >&2
    exit 1
  fi
  if [[ -s "$CA" && -s "$DATA/admin-token" ]] &&
    curl -sf -o /dev/null --max-time 2 --cacert "$CA" "$URL/healthz"; then
    ready=1
    break
  fi
  sleep 0.2
done
if [[ -z "$ready" ]]; then
  echo "studiotest: chub server not healthy at $URL/healthz within ${STARTUP_TIMEOUT}s" >&2
  exit 1
fi

export CHUB_SERVER="$URL"
CHUB_TOKEN="$(tr -d '\r\n' <"$DATA/admin-token")"
export CHUB_TOKEN
export CHUB_PAGE_SIZE="$PAGE_SIZE"
export NODE_EXTRA_CA_CERTS="$CA"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"
export CHUB_CA_CERT="$CA"
export CHUB_BIN
export CHUB_CHROMIUM="$CHROMIUM"
export STUDIO_SCREENSHOTS="${STUDIO_SCREENSHOTS:-$HERE/screenshots}"
mkdir -p "$STUDIO_SCREENSHOTS"

# The users: alice (Contributor) and bob (Reader), both with passwords.
export STUDIO_PASSWORD="studio-test-$RANDOM$RANDOM"
for u in alice bob; do
  "$CHUB_BIN" user create "$u" >/dev/null
  printf '%s\n' "$STUDIO_PASSWORD" | "$CHUB_BIN" user set-password "$u" >/dev/null
done
"$CHUB_BIN" role assignment create --assignee alice --role Contributor --scope / >/dev/null
"$CHUB_BIN" role assignment create --assignee bob --role Reader --scope / >/dev/null

# Install from the committed lockfile when node_modules is missing or older than the lockfile.
if [[ ! -d "$HERE/node_modules/playwright-core" ||
  "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# Arguments ending in .js pick test files (default: all of test/); the others go to node --test.
flags=()
files=()
for a in "$@"; do
  case "$a" in
    *.js) files+=("$(cd "$(dirname "$a")" && pwd)/$(basename "$a")") ;;
    *) flags+=("$a") ;;
  esac
done
cd "$HERE"
if [[ ${#files[@]} -eq 0 ]]; then files=(test/*.test.js); fi
echo "studiotest: screenshots go to $STUDIO_SCREENSHOTS"
node --test --test-concurrency=1 ${flags[@]+"${flags[@]}"} "${files[@]}"
