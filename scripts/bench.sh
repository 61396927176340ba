#!/usr/bin/env bash
# make bench: openshell-sandbox's proxy against the direct path, squid, tinyproxy and
# mitmproxy, in throw-away network namespaces (root needed). Install the peers first:
# scripts/deps-bench.sh. Options are passed to scripts/bench.py (--rounds N, --only P1,P6,
# --quick, --profile, --no-write).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: run as root (it creates network namespaces)" >&2
  exit 2
fi
exec /usr/bin/python3 scripts/bench.py "$@"
