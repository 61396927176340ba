# openshell-sandbox container image.
#
# Build stage: Debian 12 with the -dev packages, installed by the same script
# and built by the same make target as on a developer machine, so the image
# cannot drift from the Makefile (tests/integration/test_dockerfile.py checks).
FROM debian:12 AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh
COPY . .
RUN make clean && make all

# Runtime stage: only the shared libraries the binary links against.
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libnl-3-200 libnl-route-3-200 libnl-nf-3-200 libnftables1 libseccomp2 libssl3 libcap2 \
      libyaml-0-2 libuv1 libjson-c5 libssh-4 ca-certificates openssh-sftp-server \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/openshell-sandbox /opt/openshell/bin/openshell-sandbox
# Needs: CAP_NET_ADMIN (namespace, veth, nftables), CAP_SYS_ADMIN (namespaces,
# mounts, Landlock/seccomp set-up), CAP_SETUID/SETGID/SETPCAP (privilege drop),
# CAP_KILL, CAP_CHOWN (read_write directories); run with e.g.
#   docker run --cap-add NET_ADMIN --cap-add SYS_ADMIN --security-opt seccomp=unconfined ...
ENTRYPOINT ["/opt/openshell/bin/openshell-sandbox"]
