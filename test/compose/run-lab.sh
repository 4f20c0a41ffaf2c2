#!/usr/bin/env bash
# Runs the compose lab (docker-compose.yml) for real with Debian's docker.io and docker-compose, and checks that
# sample containers on different hosts reach each other through the overlay. Not in CI (minutes, and heavy); as root:
#
#   bash test/compose/run-lab.sh        # exit 0 only if every ping passed; about 6 minutes here (vfs, 2 cores)
#
#   root namespace                      namespace vxr-compose-<pid> (no uplink: nothing leaves it)
#   ─────────────────                   ─────────────────────────────────────────────────────────────
#   this script, debootstrap  ──unix──▶ dockerd (own data/exec root, socket, pidfile, all in one temp dir)
#   docker-compose                        └─ underlay bridge 198.51.100.0/24 (internal): etcd .254, host1-3 .11-.13
#                                               each host: br0 + TAP (vxlan-router) + sample containers c1..c6
#
# dockerd runs in a network namespace of its own, so its iptables, ip_forward and bridges stay there (and it runs
# with --iptables=false --ip-forward=false anyway); the root namespace's ip_forward, iptables FORWARD policy and a
# docker0 that was not there before are restored all the same. Everything is removed on exit (trap).
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf '[%5.1fs] %s\n' "$(( $(date +%s%N) / 1000000 - T0 ))e-3" "$*"; }
T0=$(( $(date +%s%N) / 1000000 ))
fail() { say "FAIL: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || { echo "run-lab: needs root (network namespace, dockerd)" >&2; exit 1; }
# docker.io is not in scripts/setup.sh (only this script needs it); policy-rc.d keeps apt from starting a daemon.
for tool in dockerd:docker.io docker-compose:docker-compose debootstrap:debootstrap; do
  command -v "${tool%%:*}" >/dev/null || {
    say "installing ${tool#*:}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${tool#*:}" >/dev/null
  }
done
# The docker.io client matches its daemon (another `docker` may come first on PATH).
DOCKER=$( [ -x /usr/bin/docker ] && echo /usr/bin/docker || command -v docker )
[ -f dist/cli.js ] && [ -f native/build/Release/vxlan_native.node ] || bash scripts/setup.sh
# The images carry this checkout's dist/ and addon: built before its sources last changed, the lab would run old code.
stale=$(node --input-type=module -e "const m = await import('./dist/lab/stale-build.js'); console.log(m.staleBuildReason() ?? '')")
[ -z "$stale" ] || fail "$stale"

NS=vxr-compose-$$
TMP=$(mktemp -d /tmp/vxr-compose.XXXXXX)
CGROUP=vxr-compose-$$
export DOCKER DOCKER_HOST=unix://$TMP/docker.sock COMPOSE_PROJECT_NAME=vxrlab$$
compose() { docker-compose -f docker-compose.yml "$@"; }

# Root-namespace state that a dockerd could change, to put back on exit.
ROOT_FWD=$(cat /proc/sys/net/ipv4/ip_forward)
ROOT_POLICY=$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" { print $3 }' || true)
ROOT_DOCKER0=$(ip link show docker0 >/dev/null 2>&1 && echo yes || echo no)
DOCKERD_PID=
UP=no

cleanup() {
  local rc=$?
  set +e
  trap - EXIT
  if [ "$UP" = yes ]; then
    [ "$rc" -eq 0 ] || { say "logs of the lab:"; compose logs --no-color --tail=30 2>&1 | sed 's/^/    /'; }
    compose down -t 5 >/dev/null 2>&1 && say "docker-compose down"
  fi
  if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    kill -TERM "$DOCKERD_PID"
    for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$DOCKERD_PID" 2>/dev/null && kill -KILL "$DOCKERD_PID"
    say "dockerd $DOCKERD_PID stopped"
  fi
  # Anything still running in our namespace (containerd, shims) is ours: end it by PID.
  if ip netns list | grep -qw "$NS"; then
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns del "$NS"
  fi
  # Mounts dockerd left under the temp dir (shm of containers), deepest first; then our cgroups.
  awk -v d="$TMP" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  find /sys/fs/cgroup -depth -type d -path "*/$CGROUP*" -exec rmdir {} \; 2>/dev/null
  echo "$ROOT_FWD" > /proc/sys/net/ipv4/ip_forward
  [ -n "$ROOT_POLICY" ] && iptables -P FORWARD "$ROOT_POLICY"
  [ "$ROOT_DOCKER0" = no ] && ip link show docker0 >/dev/null 2>&1 && ip link del docker0
  rm -rf "$TMP"
  say "cleaned up (namespace $NS, $TMP); exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. dockerd in its own network namespace (nsenter, not `ip netns exec`: that one remounts /sys and hides cgroups)
#    and its own mount namespace with a private /run: what it writes there regardless of --exec-root
#    (/run/docker/plugins) and the mounts it makes for containers vanish with it.
ip netns add "$NS"
ip -n "$NS" link set lo up
echo '{}' > "$TMP/daemon.json"   # not /etc/docker/daemon.json
nsenter --net="/run/netns/$NS" unshare --mount --propagation private \
  sh -c 'mount -t tmpfs -o mode=755 vxr-run /run && exec "$@"' sh dockerd --config-file "$TMP/daemon.json" \
  --data-root "$TMP/data" --exec-root "$TMP/exec" --pidfile "$TMP/dockerd.pid" --host "$DOCKER_HOST" \
  --storage-driver vfs --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
  --cgroup-parent "/$CGROUP" >"$TMP/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 150); do "$DOCKER" version >/dev/null 2>&1 && break; kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
"$DOCKER" version >/dev/null 2>&1 || { tail -20 "$TMP/dockerd.log"; fail "dockerd did not start"; }
say "dockerd $DOCKERD_PID up in namespace $NS ($("$DOCKER" version -f '{{.Server.Version}}'), vfs, state in $TMP)"

# 2. Images, all local: Debian base (debootstrap), the host's build on it, then the Dockerfile through compose.
BASE=$(bash test/compose/base-image.sh vxlan-router-base:bookworm)
say "base image $BASE (debootstrap minbase + docker import)"
PREBUILT=$(bash test/compose/prebuilt-image.sh "$BASE" vxlan-router-prebuilt:local)
say "build-stage image $PREBUILT (this checkout's dist/, addon, production node_modules, node $(node --version))"
compose build -q --build-arg BASE="$BASE" --build-arg BUILD="$PREBUILT" >"$TMP/build.log" 2>&1 || { tail -30 "$TMP/build.log"; fail "docker-compose build"; }
say "docker-compose build: image vxlan-router:lab"

# 3. Up, and wait until every router sees the other two hosts.
UP=yes
compose up -d >"$TMP/up.log" 2>&1 || { cat "$TMP/up.log"; fail "docker-compose up"; }
say "docker-compose up -d: etcd, host1, host2, host3"
peers() { compose exec -T "$1" vxlan-router peers --json 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).length)}catch{console.log(0)}})'; }
for h in host1 host2 host3; do
  for _ in $(seq 120); do [ "$(peers "$h")" = 2 ] && break; sleep 0.5; done
  [ "$(peers "$h")" = 2 ] || fail "$h's router does not see the other two hosts"
done
say "ready: every router has 2 peers from etcd"

# 4. Pings through the overlay: each sample container to every other (one exec per source container).
declare -A HOST=([c1]=host1 [c2]=host1 [c3]=host2 [c4]=host2 [c5]=host3 [c6]=host3)
declare -A IP=([c1]=198.18.0.11 [c2]=198.18.0.12 [c3]=198.18.0.21 [c4]=198.18.0.22 [c5]=198.18.0.31 [c6]=198.18.0.32)
failed=0 passed=0
# Runs inside a host service: ping each target from the sample container $1 (3 packets, passes on any answer: the
# first may wait for ARP over the overlay); prints "ok|FAIL name addr summary" per target.
PINGS='src=$1; shift; for t in "$@"; do n=${t%%=*} a=${t#*=}
  if r=$(ip netns exec "$src" ping -q -c 3 -i 0.2 -W 2 "$a"); then v=ok; else v=FAIL; fi
  echo "$v $n $a $(echo "$r" | grep -o "[0-9]* received\|rtt.*" | tr "\n" " ")"; done'
for src in c1 c2 c3 c4 c5 c6; do
  targets=()
  for dst in c1 c2 c3 c4 c5 c6; do [ "$src" = "$dst" ] || targets+=("$dst=${IP[$dst]}"); done
  out=$(compose exec -T "${HOST[$src]}" sh -c "$PINGS" sh "$src" "${targets[@]}" || true)
  while read -r verdict dst addr summary; do
    say "ping $src (${HOST[$src]}) -> $dst (${HOST[$dst]}, $addr): $verdict, $summary"
    if [ "$verdict" = ok ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  done <<<"$out"
done
say "pings: $passed passed, $failed failed"

# 5. What a router says about it.
say "vxlan-router status on host1:"
compose exec -T host1 vxlan-router status | sed 's/^/    /'
[ "$failed" -eq 0 ] && [ "$passed" -eq 30 ] || fail "$failed of 30 pings failed"
say "PASS: c1 (host1) reaches c5 (host3) and every sample container reaches every other through the overlay"
