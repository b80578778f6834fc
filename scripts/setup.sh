#!/usr/bin/env bash
# Installs the system packages ComputeHub's local runtime and tests need on a
# fresh Debian machine. Safe to run again: it installs only what is missing.
set -euo pipefail
need=()
command -v sudo >/dev/null || need+=(sudo)            # azureuser's sudo inside instances (host image)
command -v gcc >/dev/null || need+=(gcc libc6-dev)    # cgo, for embedded libcontainer
command -v curl >/dev/null || need+=(curl)
command -v node >/dev/null || need+=(nodejs npm)      # the Azure SDK test suite
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing ${need[*]}; run as root (or install them) and try again" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
