#!/usr/bin/env bash
# Installs every Debian 12 package needed to build, test and demo openshell-sandbox.
# Idempotent: packages already present are not reinstalled; apt-get update runs only
# when something is missing.
set -euo pipefail

PKGS=(
  build-essential pkg-config clang libclang-rt-14-dev
  libnl-3-dev libnl-route-3-dev libnl-nf-3-dev libnftables-dev libseccomp-dev
  libssl-dev libcap-dev libyaml-dev libuv1-dev libssh-dev
  libcmocka-dev libjson-c-dev
  python3 python3-pytest
  iproute2 nftables util-linux procps curl wget openssl socat openssh-client openssh-sftp-server tmux iputils-ping
  git python3-requests nodejs binutils tinyproxy-bin
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
