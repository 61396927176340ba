#!/usr/bin/env bash
# Runs the integration suite inside a container built from the Dockerfile, where
# a Docker engine exists (this development machine has only the client).
#   scripts/docker-e2e.sh            build the image, run `make check` inside it
#   DRY_RUN=1 scripts/docker-e2e.sh  print the docker commands instead of running them
#   DOCKER=/path/to/docker           use another client binary
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKER="${DOCKER:-docker}"
IMAGE="${IMAGE:-openshell-sandbox:e2e}"
SHARED="$(cd .. && pwd)/shared"

run() {
  if [ "${DRY_RUN:-0}" = 1 ]; then
    printf '+'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

if [ "${DRY_RUN:-0}" != 1 ] && ! "$DOCKER" info >/dev/null 2>&1; then
  echo "docker-e2e: no Docker engine reachable through '$DOCKER' (this machine has only the client)" >&2
  exit 2
fi

# The build stage is the image's first stage: it has the toolchain and the
# test dependencies; the suite runs there as root with the capabilities the
# supervisor needs.
run "$DOCKER" build --target build -t "$IMAGE" .
mounts=()
if [ -d "$SHARED" ]; then
  mounts=(-v "$SHARED:/shared:ro")
fi
run "$DOCKER" run --rm \
  --cap-add NET_ADMIN --cap-add SYS_ADMIN --cap-add SYS_PTRACE \
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
  "${mounts[@]}" "$IMAGE" make check
