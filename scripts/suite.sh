# Shared by the node test suites (sdktest/, studiotest/), sourced by their run.sh: starts a
# throw-away chub server (HTTPS with its self-signed local CA, real local containers) on a free
# port of 127.0.0.1, exports how to reach it, and always stops it at exit after deleting what the
# tests left behind (the suite's lib/sweep.js). Builds nothing; must run as root.
#
# The caller sets SUITE (its name), HERE (its folder) and NODE_DEP (a module whose presence
# shows `npm ci` ran), then calls suite_start_server and, last, suite_run_tests "$@".

CHUB_BIN="${CHUB_BIN:-$HERE/../bin/chub}"
CHUB_BIN_GIVEN="$CHUB_BIN"
case "$CHUB_BIN" in /*) ;; *) CHUB_BIN="$(cd "$(dirname "$CHUB_BIN")" 2>/dev/null && pwd)/$(basename "$CHUB_BIN")" ;; esac
PAGE_SIZE=2
STARTUP_TIMEOUT="${CHUB_STARTUP_TIMEOUT:-180}"

if [[ ! -x "$CHUB_BIN" ]]; then
  echo "$SUITE: no chub binary at $CHUB_BIN_GIVEN (build it: go build -o bin/chub ./cmd/chub, or set CHUB_BIN)" >&2
  exit 1
fi
command -v node >/dev/null || { echo "$SUITE: node is not installed" >&2; exit 1; }
command -v curl >/dev/null || { echo "$SUITE: curl is not installed" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/chub-$SUITE.XXXXXX")"
DATA="$WORK/data"
LOG="$WORK/server.log"
mkdir -m 0700 "$DATA"
SERVER_PID=""

suite_cleanup() {
  local rc=$?
  set +e
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    if [[ -n "${CHUB_SERVER:-}" && -n "${CHUB_TOKEN:-}" ]]; then
      # Safety net: delete whatever the tests left behind, so no instance outlives the run.
      (cd "$HERE" && timeout 120 node lib/sweep.js) || echo "$SUITE: sweep of leftover instances failed" >&2
    fi
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 300); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "$SUITE: server did not stop within 30s of SIGTERM; sending SIGKILL" >&2
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
    echo "$SUITE: mounts remain under $WORK (an instance outlived the run); leaving it in place" >&2
  else
    rm -rf --one-file-system "$WORK" 2>/dev/null ||
      echo "$SUITE: could not remove $WORK completely" >&2
  fi
  exit $rc
}
trap suite_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# suite_start_server starts the server and waits until it is healthy, then exports CHUB_SERVER,
# CHUB_TOKEN (the admin's), CHUB_CA_CERT, NODE_EXTRA_CA_CERTS, CHUB_PAGE_SIZE and CHUB_BIN.
suite_start_server() {
  local port
  port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  local url="https://127.0.0.1:$port"
  "$CHUB_BIN" server --data-dir "$DATA" --listen "127.0.0.1:$port" --page-size "$PAGE_SIZE" >"$LOG" 2>&1 &
  SERVER_PID=$!
  local ca="$DATA/tls/ca.crt" ready=""
  for _ in $(seq 1 $((STARTUP_TIMEOUT * 5))); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "$SUITE: chub server exited during startup" >&2
      exit 1
    fi
    if [[ -s "$ca" && -s "$DATA/admin-token" ]] &&
      curl -sf -o /dev/null --max-time 2 --cacert "$ca" "$url/healthz"; then
      ready=1
      break
    fi
    sleep 0.2
  done
  if [[ -z "$ready" ]]; then
    echo "$SUITE: chub server not healthy at $url/healthz within ${STARTUP_TIMEOUT}s" >&2
    exit 1
  fi
  export CHUB_SERVER="$url"
  CHUB_TOKEN="$(tr -d '\r\n' <"$DATA/admin-token")"
  export CHUB_TOKEN
  export CHUB_PAGE_SIZE="$PAGE_SIZE"
  export NODE_EXTRA_CA_CERTS="$ca"
  export CHUB_CA_CERT="$ca"
  export CHUB_BIN
  export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
  export no_proxy="$NO_PROXY"
}

# suite_run_tests installs the suite's packages from its lockfile when needed and runs node's
# test runner: arguments ending in .js pick test files (default: all of test/), the others go to
# node --test.
suite_run_tests() {
  if [[ ! -d "$HERE/node_modules/$NODE_DEP" ||
    "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]]; then
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  local flags=() files=() a
  for a in "$@"; do
    case "$a" in
      *.js) files+=("$(cd "$(dirname "$a")" && pwd)/$(basename "$a")") ;;
      *) flags+=("$a") ;;
    esac
  done
  cd "$HERE"
  if [[ ${#files[@]} -eq 0 ]]; then files=(test/*.test.js); fi
  node --test --test-concurrency=1 ${flags[@]+"${flags[@]}"} "${files[@]}"
}
