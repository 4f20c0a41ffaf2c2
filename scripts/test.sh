#!/usr/bin/env bash
# `npm test`: every test file. The files that touch the machine (namespaces, TAP devices, dockerd, timing-sensitive
# traffic) run one at a time, so two labs never compete for the 2 cores; the pure ones (codecs, tables, control-plane
# logic against a private etcd on loopback) run two at a time first. A new test that builds namespaces or devices
# belongs under test/lab/ (or in MACHINE below). Extra arguments go to both tap runs (e.g. --grep).
set -uo pipefail
cd "$(dirname "$0")/.."

MACHINE=(
  test/lab/ test/docker/ test/bench/ test/native/ test/compose/
  test/cli/errors.test.ts
  test/config/systemd-unit.test.ts test/config/paths.test.ts test/config/node-flags.test.ts
  test/agent/docker-driver.test.ts test/agent/docker-plugin.test.ts test/agent/links.test.ts
)
machine=() pure=()
while IFS= read -r f; do
  hit=
  for m in "${MACHINE[@]}"; do [[ "$f" == "$m"* ]] && hit=1 && break; done
  if [ -n "$hit" ]; then machine+=("$f"); else pure+=("$f"); fi
done < <(find test -name '*.test.ts' | sort)

echo "npm test: ${#pure[@]} pure files two at a time, then ${#machine[@]} machine files one at a time"
npx tap --jobs 2 "$@" "${pure[@]}"; a=$?
# The native engine's two event loops, in every lab: the first host's routers on io_uring, the second's on threads,
# and each further router on a host on the other loop (src/lab/lab.ts, loopFor). VXLAN_ROUTER_LOOP=uring (or
# threads) runs them all on one.
VXLAN_ROUTER_LOOP="${VXLAN_ROUTER_LOOP:-mixed}" npx tap --jobs 1 "$@" "${machine[@]}"; b=$?
[ "$a" -eq 0 ] && [ "$b" -eq 0 ]
