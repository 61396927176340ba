#!/usr/bin/env bash
# make demo: a guided tour of openshell-sandbox in a throw-away network (root needed).
# The tour itself is scripts/demo.py; it builds and removes its own namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (it creates network namespaces)" >&2
  exit 2
fi
exec /usr/bin/python3 scripts/demo.py "$@"
