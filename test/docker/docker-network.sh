#!/usr/bin/env bash
# `vxlan-router docker-network create` against a real dockerd (issue #4, "Plain Docker hosts"); run by hand, or
# under tap by test/docker/docker-network.test.ts where dockerd is already installed (that one installs nothing;
# run alone, this script installs docker.io). Two hosts in network namespaces of its own:
#   h1: etcd, dockerd, the Docker network made by `docker-network create`, a Docker container on it, a router on its bridge
#   h2: no Docker: a plain bridge with a namespace "container" and a router
# It asserts that the Docker network has the overlay's subnet, h1's leased range, gateway, bridge and MTU, that a
# second run says "unchanged", and that the Docker container and h2's container ping each other over the overlay;
# then that after dockerd restarts (live-restore off: c1, `--restart always`, comes back with a new veth) they still
# do, with the same router process (issue 15).
# dockerd runs inside h1's namespace with all its state in one temp dir, so its iptables rules, ip_forward and
# bridges stay there; br_netfilter, which it may load for the whole machine, is unloaded again if it was not loaded.
#
#   sudo bash test/docker/docker-network.sh      (after `bash scripts/setup.sh`)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "docker-network test: needs root (network namespaces, dockerd)" >&2; exit 1; }
[ -f dist/cli.js ] || { echo "docker-network test: run 'bash scripts/setup.sh' first (dist/ missing)" >&2; exit 1; }
need=()
command -v dockerd >/dev/null || need+=(docker.io)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null; fi

CLI=(node "$PWD/dist/cli.js")
TMP=$(mktemp -d /tmp/vxr-dockernet.XXXXXX)
H1=vxrd1-$$ H2=vxrd2-$$ C2=vxrdc2-$$
ETCD=http://198.51.100.1:23790
DOCKER=(docker -H "unix://$TMP/docker.sock")
pids=()
brnf_before=$(grep -c '^br_netfilter ' /proc/modules 2>/dev/null || true)
CGROUP=vxr-dockernet-$$

cleanup() {
  set +e
  "${DOCKER[@]}" rm -f c1 >/dev/null 2>&1
  "${DOCKER[@]}" network rm vxr-default >/dev/null 2>&1
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  [ -f "$TMP/docker.pid" ] && kill "$(cat "$TMP/docker.pid")" 2>/dev/null
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  for _ in $(seq 50); do [ -f "$TMP/docker.pid" ] && kill -0 "$(cat "$TMP/docker.pid")" 2>/dev/null || break; sleep 0.2; done
  ip netns del "$C2" 2>/dev/null; ip netns del "$H2" 2>/dev/null; ip netns del "$H1" 2>/dev/null
  [ "$brnf_before" = 0 ] && grep -q '^br_netfilter ' /proc/modules 2>/dev/null && rmmod br_netfilter 2>/dev/null
  awk -v d="$TMP" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  find /sys/fs/cgroup -depth -type d -path "*/$CGROUP*" -exec rmdir {} \; 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

step "two hosts: $H1 (198.51.100.1, Docker) and $H2 (198.51.100.2, plain)"
ip netns add "$H1"; ip netns add "$H2"; ip netns add "$C2"
ip link add u1 netns "$H1" type veth peer name u2 netns "$H2"
ip -n "$H1" addr add 198.51.100.1/24 dev u1; ip -n "$H2" addr add 198.51.100.2/24 dev u2
for n in "$H1" "$H2" "$C2"; do ip -n "$n" link set lo up; done
ip -n "$H1" link set u1 up; ip -n "$H2" link set u2 up
# The veth checksum trap (LAB.md): checksums left to offload on the underlay would be wrong on the wire.
ip netns exec "$H1" ethtool -K u1 tx off >/dev/null; ip netns exec "$H2" ethtool -K u2 tx off >/dev/null

step "etcd in $H1, the overlay network defined once"
ip netns exec "$H1" etcd --name lab --data-dir "$TMP/etcd" --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
  --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster lab=http://127.0.0.1:23800 >"$TMP/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do ip netns exec "$H1" etcdctl --endpoints "$ETCD" endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
ip netns exec "$H1" "${CLI[@]}" network create default --vni 42 --subnet 198.18.0.0/16 --etcd "$ETCD"

step "dockerd in $H1 (state in $TMP)"
# nsenter, not `ip netns exec` (which remounts /sys and hides the cgroups dockerd needs); a mount namespace with a
# private /run, so what dockerd writes there goes with it. No iptables rules: the overlay is plain L2 on the bridge.
# live-restore off (Docker's default): a dockerd stop stops the containers, a start restarts those with a restart
# policy, each with a new veth.
echo '{"live-restore": false}' >"$TMP/daemon.json"
start_dockerd() {
  nsenter --net="/run/netns/$H1" unshare --mount --propagation private \
    sh -c 'mount -t tmpfs -o mode=755 vxr-run /run && exec "$@"' sh dockerd --config-file "$TMP/daemon.json" \
    --data-root "$TMP/docker" --exec-root "$TMP/exec" --pidfile "$TMP/docker.pid" --host "unix://$TMP/docker.sock" \
    --storage-driver vfs --bridge=none --iptables=false --ip-forward=false --ip-masq=false --cgroup-parent "/$CGROUP" \
    >>"$TMP/dockerd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do "${DOCKER[@]}" info >/dev/null 2>&1 && break; sleep 0.3; done
  "${DOCKER[@]}" info >/dev/null 2>&1 || { tail -20 "$TMP/dockerd.log"; fail "dockerd did not start"; }
}
start_dockerd
# No registry here: a busybox image made from Debian's busybox-static.
mkdir -p "$TMP/rootfs/bin"; cp /bin/busybox "$TMP/rootfs/bin/"
for a in sh ping ip sleep cat; do ln -s busybox "$TMP/rootfs/bin/$a"; done
tar -C "$TMP/rootfs" -c . | "${DOCKER[@]}" import - vxr-busybox:local >/dev/null

step "vxlan-router docker-network create default (in $H1)"
ip netns exec "$H1" "${CLI[@]}" docker-network create default --etcd "$ETCD" --local 198.51.100.1 --docker-socket "$TMP/docker.sock" | tee "$TMP/create.txt"
grep -q '^docker network vxr-default created' "$TMP/create.txt" || fail "not created"
# Whole output to a file, then its first line: `| head -1` closes the pipe early and the CLI dies of EPIPE.
ip netns exec "$H1" "${CLI[@]}" docker-network create default --etcd "$ETCD" --local 198.51.100.1 --docker-socket "$TMP/docker.sock" >"$TMP/again.txt"
again=$(head -1 "$TMP/again.txt")
echo "again: $again"; [[ "$again" == *unchanged* ]] || fail "a second run should find it unchanged"
inspect=$("${DOCKER[@]}" network inspect vxr-default --format '{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).IPRange}} {{(index .IPAM.Config 0).Gateway}} {{index .Options "com.docker.network.bridge.name"}} {{index .Options "com.docker.network.driver.mtu"}}')
echo "docker network inspect: $inspect"
read -r subnet iprange gateway bridge mtu <<<"$inspect"
[ "$subnet" = 198.18.0.0/16 ] && [ "$bridge" = vxr-default ] && [ "$mtu" = 1450 ] || fail "unexpected Docker network: $inspect"

step "routers: $H1 on Docker's bridge, $H2 on a plain one"
ip -n "$H2" link add br0 type bridge; ip -n "$H2" link set br0 up
ip netns exec "$H1" "${CLI[@]}" up --local 198.51.100.1 --bridge vxr-default --etcd "$ETCD" --network default \
  --socket "$TMP/h1.sock" --state-dir "$TMP/state1" --metrics off >"$TMP/r1.log" 2>&1 &
pids+=($!)
ip netns exec "$H2" "${CLI[@]}" up --local 198.51.100.2 --bridge br0 --etcd "$ETCD" --network default \
  --socket "$TMP/h2.sock" --state-dir "$TMP/state2" --metrics off >"$TMP/r2.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$TMP/h1.sock" ] && [ -S "$TMP/h2.sock" ] && break; sleep 0.2; done
r1=$(ip netns exec "$H1" "${CLI[@]}" status --socket "$TMP/h1.sock" --json | node -e 'const s=JSON.parse(require("fs").readFileSync(0));console.log(s.networks[0].range, s.networks[0].gateway)')
r2=$(ip netns exec "$H2" "${CLI[@]}" status --socket "$TMP/h2.sock" --json | node -e 'const s=JSON.parse(require("fs").readFileSync(0));console.log(s.networks[0].range, s.networks[0].gateway)')
echo "h1 range/gateway: $r1   h2 range/gateway: $r2"
[ "$r1" = "$iprange $gateway" ] || fail "the router of h1 holds $r1, the Docker network uses $iprange $gateway"
[ "${r1%% *}" != "${r2%% *}" ] || fail "both hosts hold one range"

step "a Docker container on h1, a namespace container on h2 (an address of h2's range)"
"${DOCKER[@]}" run -d --restart always --name c1 --network vxr-default vxr-busybox:local sleep 600 >/dev/null
ip1=$("${DOCKER[@]}" inspect c1 --format '{{(index .NetworkSettings.Networks "vxr-default").IPAddress}}')
gw2=${r2##* }; ip2="${gw2%.*}.$(( ${gw2##*.} + 1 ))"
echo "c1 (Docker, h1): $ip1   c2 (h2): $ip2"
case "$ip1" in "${iprange%.*/*}".*) ;; *) fail "Docker gave c1 $ip1, outside h1's range $iprange" ;; esac
[ "$ip1" != "${iprange%/*}" ] || fail "Docker gave c1 the slice's first address $ip1 (reserved as an auxiliary address)"
ip link add c2 netns "$C2" type veth peer name c2-br netns "$H2"
ip -n "$H2" link set c2-br master br0 up
ip -n "$C2" addr add "$ip2/16" dev c2; ip -n "$C2" link set c2 mtu 1450 up

step "pings across the overlay"
"${DOCKER[@]}" exec c1 ping -c 3 -W 2 "$ip2" | tail -2
ip netns exec "$C2" ping -c 3 -W 2 "$ip1" | tail -2

step "dockerd restarts (live-restore off) while the routers run"
r1pid=$(ip netns exec "$H1" "${CLI[@]}" status --socket "$TMP/h1.sock" --json | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).pid)')
veth_before=$(ip -n "$H1" -o link show master vxr-default | grep -v vxr42 | awk -F': ' '{print $2}' | cut -d@ -f1)
dpid=$(cat "$TMP/docker.pid"); kill "$dpid"
for _ in $(seq 100); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.2; done
kill -0 "$dpid" 2>/dev/null && fail "dockerd did not stop"
echo "dockerd stopped; bridge vxr-default: $(ip -n "$H1" -o link show vxr-default >/dev/null 2>&1 && echo kept || echo removed); c1's veth was $veth_before"
t0=$(date +%s.%N)
start_dockerd
for _ in $(seq 100); do [ "$("${DOCKER[@]}" inspect c1 --format '{{.State.Running}}')" = true ] && break; sleep 0.2; done
veth_after=$(ip -n "$H1" -o link show master vxr-default | grep -v vxr42 | awk -F': ' '{print $2}' | cut -d@ -f1)
ip1b=$("${DOCKER[@]}" inspect c1 --format '{{(index .NetworkSettings.Networks "vxr-default").IPAddress}}')
echo "c1 restarted by dockerd: veth $veth_after (was $veth_before), address $ip1b"
"${DOCKER[@]}" exec c1 ping -c 3 -W 2 "$ip2" | tail -2 || fail "c1 does not reach c2 after the dockerd restart"
t1=$(date +%s.%N)
ip netns exec "$C2" ping -c 3 -W 2 "$ip1b" | tail -2 || fail "c2 does not reach c1 after the dockerd restart"
[ "$(ip netns exec "$H1" "${CLI[@]}" status --socket "$TMP/h1.sock" --json | node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).pid)')" = "$r1pid" ] \
  || fail "the router of h1 was restarted"
ip netns exec "$H1" "${CLI[@]}" status --socket "$TMP/h1.sock" --json | node -e 'const n=JSON.parse(require("fs").readFileSync(0)).networks[0];console.log("router h1: bridge missing since", n.bridgeMissingSince, "rejoins", n.bridgeRejoins, "TAPs recreated", n.tapsRecreated)'
printf 'dockerd start → c1 reaches c2: %.1f s (dockerd start and container restart included)\n' "$(echo "$t1 - $t0" | bc)"

step "docker network rm + create while the routers run (the bridge goes and comes back)"
"${DOCKER[@]}" rm -f c1 >/dev/null
"${DOCKER[@]}" network rm vxr-default >/dev/null
ip -n "$H1" link show vxr-default >/dev/null 2>&1 && fail "the bridge outlived docker network rm"
missing=$(ip netns exec "$H1" "${CLI[@]}" status --socket "$TMP/h1.sock" | grep 'missing since' || true)
echo "status: $missing"
[ -n "$missing" ] || fail "status does not say the bridge is missing"
ip netns exec "$H1" "${CLI[@]}" docker-network create default --etcd "$ETCD" --local 198.51.100.1 --docker-socket "$TMP/docker.sock" >"$TMP/create2.txt"
head -1 "$TMP/create2.txt"
"${DOCKER[@]}" run -d --restart always --name c1 --network vxr-default vxr-busybox:local sleep 600 >/dev/null
ip1c=$("${DOCKER[@]}" inspect c1 --format '{{(index .NetworkSettings.Networks "vxr-default").IPAddress}}')
"${DOCKER[@]}" exec c1 ping -c 3 -W 2 "$ip2" | tail -2 || fail "c1 does not reach c2 after the network was recreated"
ip netns exec "$C2" ping -c 3 -W 2 "$ip1c" | tail -2 || fail "c2 does not reach c1 after the network was recreated"
ip netns exec "$H1" "${CLI[@]}" status --socket "$TMP/h1.sock" --json | node -e 'const s=JSON.parse(require("fs").readFileSync(0));const n=s.networks[0];console.log("router h1 (pid " + s.pid + "): bridge missing since", n.bridgeMissingSince, "rejoins", n.bridgeRejoins)'

echo
echo "PASS: the Docker network on h1 hands out h1's range ($iprange) and its container reaches h2's over the overlay,"
echo "      also after dockerd restarted and after the Docker network was removed and created again (same router process)"
