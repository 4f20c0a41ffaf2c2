#!/usr/bin/env bash
# Builds a local Debian bookworm base image for the compose lab where no image registry is reachable:
# debootstrap --variant=minbase into a temp dir, then `docker import`. The image already carries the packages the
# router image needs (iproute2, iputils-ping, etcd-server, etcd-client), so the Dockerfile installs nothing and the
# build needs no network (the lab's dockerd runs in a namespace without one).
#
#   bash test/compose/base-image.sh [TAG]      # default TAG vxlan-router-base:bookworm; prints the tag
#
# Needs root, debootstrap and a Debian mirror (MIRROR, default the one apt uses). DOCKER_HOST picks the daemon.
set -euo pipefail

TAG=${1:-vxlan-router-base:bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PACKAGES=iproute2,iputils-ping,etcd-server,etcd-client
DOCKER=${DOCKER:-docker}

command -v debootstrap >/dev/null || { echo "base-image: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "base-image: debootstrap needs root" >&2; exit 1; }

dir=$(mktemp -d /tmp/vxr-base.XXXXXX)
# debootstrap mounts /proc (and more) in the tree while it works: unmount whatever is left before removing it.
cleanup() {
  awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$dir"
}
trap cleanup EXIT
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$dir/rootfs" "$MIRROR" >"$dir/debootstrap.log" 2>&1 \
  || { tail -20 "$dir/debootstrap.log" >&2; exit 1; }
# Smaller image: no package lists or downloaded .debs.
rm -rf "$dir"/rootfs/var/cache/apt/archives/*.deb "$dir"/rootfs/var/lib/apt/lists/*
tar -C "$dir/rootfs" --numeric-owner --one-file-system -c . | "$DOCKER" import --change 'CMD ["bash"]' - "$TAG" >/dev/null
echo "$TAG"
