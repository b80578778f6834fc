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
SUITE=studiotest
NODE_DEP=playwright-core
CHROMIUM="${CHUB_CHROMIUM:-/usr/bin/chromium}"
[[ -x "$CHROMIUM" ]] || { echo "studiotest: no Chromium at $CHROMIUM (apt-get install chromium, or make setup)" >&2; exit 1; }
# shellcheck source=../scripts/suite.sh
source "$HERE/../scripts/suite.sh"

suite_start_server
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

echo "studiotest: screenshots go to $STUDIO_SCREENSHOTS"
suite_run_tests "$@"
