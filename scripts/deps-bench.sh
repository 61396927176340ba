#!/usr/bin/env bash
# Installs the Debian 12 packages `make bench` compares against and drives the load with.
# Separate from scripts/deps.sh so `make check` stays lean. Idempotent: nothing is
# reinstalled, and apt-get update runs only when something is missing.
#
#   squid-openssl   squid 5.7 built with OpenSSL: CONNECT proxy and ssl_bump interception
#                   (the plain `squid` package links GnuTLS and has no ssl_bump)
#   tinyproxy       small CONNECT proxy
#   mitmproxy       Python interception proxy (mitmdump)
#   hey             HTTP load generator with a proxy flag (-x): drives CONNECT for https://
#   nginx-light     the world's fast static server (1 GiB by sendfile, small responses)
#   openssh-server  sshd baseline for the ssh scenario (never started as a service here)
#   openssh-client, socat, linux-perf   ssh client, unix-socket ProxyCommand, profiles
#
# Packages' services are NOT needed: the harness runs each peer itself, in the test
# world's namespaces, with its own configuration file.
set -euo pipefail

PKGS=(squid-openssl tinyproxy mitmproxy hey nginx-light openssh-server openssh-client socat)
# perf is optional (profiles in bench/NOTES.md); valgrind is the fallback profiler.
OPTIONAL=(linux-perf valgrind)

missing=()
for p in "${PKGS[@]}" "${OPTIONAL[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps-bench: all $(( ${#PKGS[@]} + ${#OPTIONAL[@]} )) packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "deps-bench: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Optional packages may be missing from a mirror: install the required ones first.
req=()
for p in "${missing[@]}"; do
  case " ${OPTIONAL[*]} " in *" $p "*) ;; *) req+=("$p") ;; esac
done
if [ "${#req[@]}" -gt 0 ]; then
  $SUDO apt-get install -y -qq --no-install-recommends "${req[@]}"
fi
for p in "${OPTIONAL[@]}"; do
  case " ${missing[*]} " in
    *" $p "*) $SUDO apt-get install -y -qq --no-install-recommends "$p" \
                || echo "deps-bench: optional $p not installed (profiles skipped)" ;;
  esac
done
