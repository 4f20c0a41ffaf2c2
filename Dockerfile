# The vxlan-router image of the compose lab (docker-compose.yml); etcd runs from it too (Debian's etcd-server).
#
# With a registry, the defaults build everything: `docker compose up --build`.
#   BUILD (node:20-bookworm): installs the npm dependencies, compiles the native addon and the TypeScript, prunes the
#     dev dependencies and gathers the result in /opt/vxlan-router (with the node binary in bin/).
#   BASE (debian:bookworm-slim): the runtime; gets iproute2, iputils-ping, etcd-server and etcd-client from apt.
# Without a registry (test/compose/run-lab.sh, docs/compose-lab.md), both are local images:
#   BASE from test/compose/base-image.sh already carries those packages, so apt is not called;
#   BUILD from test/compose/prebuilt-image.sh already holds /opt/vxlan-router (the host's own build), so the build
#     stage only copies it.
# Either way the build needs no network beyond what the default images need.
ARG BASE=debian:bookworm-slim
ARG BUILD=node:20-bookworm

FROM ${BUILD} AS build
WORKDIR /src
COPY . .
RUN set -eu; \
    if [ -f /opt/vxlan-router/dist/cli.js ]; then echo "build: using the prebuilt /opt/vxlan-router"; exit 0; fi; \
    npm ci --no-audit --no-fund --loglevel=error; \
    # node-gyp must use the headers of the node it runs on (under its prefix), not download them.
    npx node-gyp rebuild -C native --nodedir="$(dirname "$(dirname "$(command -v node)")")" -j 2; \
    npx tsc -p tsconfig.build.json; \
    npm prune --omit=dev --no-audit --no-fund; \
    mkdir -p /opt/vxlan-router/native/build/Release /opt/vxlan-router/bin; \
    cp -a dist node_modules package.json /opt/vxlan-router/; \
    cp native/build/Release/vxlan_native.node /opt/vxlan-router/native/build/Release/; \
    cp "$(command -v node)" /opt/vxlan-router/bin/node

FROM ${BASE}
# Only what the base lacks: a base from base-image.sh has it all and the build stays offline.
RUN set -eu; missing=; \
    for p in iproute2 iputils-ping etcd-server etcd-client; do \
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"; \
    done; \
    if [ -n "$missing" ]; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing; \
      rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=build /opt/vxlan-router /opt/vxlan-router
COPY compose/host-entrypoint.sh /usr/local/bin/host-entrypoint.sh
RUN ln -s /opt/vxlan-router/bin/node /usr/local/bin/node \
 && printf '#!/bin/sh\nexec /opt/vxlan-router/bin/node --max-semi-space-size=1 /opt/vxlan-router/dist/cli.js "$@"\n' > /usr/local/bin/vxlan-router \
 && chmod 755 /usr/local/bin/vxlan-router /usr/local/bin/host-entrypoint.sh
CMD ["vxlan-router", "--help"]
