#!/usr/bin/env bash
# Installs the system packages ComputeHub and its tests need on a fresh Debian
# machine. Safe to run again: it installs only what is missing.
#
# The default instance image is a snapshot of this host's /usr, so what is
# installed here is what instances get: Jupyter and ipykernel (the Jupyter
# application and kernels), python3-venv and pip (user environments), R (the
# R kernel of packages), sudo (azureuser's root inside an instance) and passt
# (outbound network for instances without touching host interfaces).
set -euo pipefail
want=(
  sudo                 # azureuser's sudo inside instances
  gcc libc6-dev        # cgo, for embedded libcontainer
  libseccomp-dev       # libcontainer's seccomp filter for instances (go build -tags seccomp)
  curl                 # make run waits for the server with it
  nodejs npm           # the Azure SDK test suite
  openssh-client       # SSH tests with the real OpenSSH client
  rsync                # rsync over SSH (client on the host, server inside instances)
  passt                # pasta: user-mode outbound network for instances
  python3 python3-venv python3-pip python3-wheel python3-setuptools
  jupyter-notebook python3-ipykernel jupyter-client   # Jupyter, inside instances
  r-base-core          # R, inside instances
  tmux                 # terminal tests drive the CLI in a real terminal
  chromium             # Studio's browser tests (studiotest/)
)
need=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
# Node may come from elsewhere than Debian's packages; keep what works.
if command -v node >/dev/null && command -v npm >/dev/null; then
  keep=(); for p in "${need[@]}"; do case $p in nodejs|npm) ;; *) keep+=("$p");; esac; done; need=("${keep[@]}")
fi
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
