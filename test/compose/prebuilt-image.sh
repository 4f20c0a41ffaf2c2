#!/usr/bin/env bash
# The local stand-in for the Dockerfile's build stage (node:20-bookworm) where no registry is reachable: the base
# image plus this checkout's own build in /opt/vxlan-router (dist/, the native addon, the production node_modules
# and the host's node binary, which the project needs at version 20 while bookworm ships 18). The Dockerfile's build
# stage sees /opt/vxlan-router/dist/cli.js and only copies it. Run `npm run build` (or scripts/setup.sh) first.
#
#   bash test/compose/prebuilt-image.sh BASE_TAG [TAG]   # default TAG vxlan-router-prebuilt:local; prints the tag
set -euo pipefail
cd "$(dirname "$0")/../.."

BASE=${1:?usage: prebuilt-image.sh BASE_TAG [TAG]}
TAG=${2:-vxlan-router-prebuilt:local}
DOCKER=${DOCKER:-docker}
NODE=$(command -v node)
[ -f dist/cli.js ] && [ -f native/build/Release/vxlan_native.node ] || { echo "prebuilt-image: run npm run build first" >&2; exit 1; }

dir=$(mktemp -d /tmp/vxr-prebuilt.XXXXXX)
trap 'rm -rf "$dir"' EXIT
app=$dir/opt/vxlan-router
mkdir -p "$app/native/build/Release" "$app/bin"
cp -a dist package.json package-lock.json node_modules "$app/"
cp native/build/Release/vxlan_native.node "$app/native/build/Release/"
cp "$NODE" "$app/bin/node"
# Drop the dev dependencies (tap, typescript, ...: 270 -> 36 MB); prune only removes, so it works offline.
(cd "$app" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null && rm package-lock.json)
printf 'FROM %s\nCOPY opt /opt\n' "$BASE" > "$dir/Dockerfile"
"$DOCKER" build -q -t "$TAG" "$dir" >/dev/null
echo "$TAG"
