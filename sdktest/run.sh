#!/usr/bin/env bash
# Proof against a real client: starts a throw-away chub server (HTTPS, self-signed local CA,
# --page-size 2) and drives it with the official @azure/arm-machinelearning 2.1.1 SDK.
#
#   CHUB_BIN=path/to/chub bash sdktest/run.sh      (default: ../bin/chub relative to sdktest/)
#   bash sdktest/run.sh sdktest/test/03-power.test.js  (only these test files)
#   bash sdktest/run.sh --test-name-pattern=paging     (other arguments go to node --test)
#
# Builds nothing. Must run as root (the server uses real local containers).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITE=sdktest
NODE_DEP=@azure/arm-machinelearning
# shellcheck source=../scripts/suite.sh
source "$HERE/../scripts/suite.sh"

suite_start_server
suite_run_tests "$@"
