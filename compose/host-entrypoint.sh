#!/bin/sh
# Entrypoint of a "host" service of docker-compose.yml: builds br0 with sample containers behind it, defines the
# overlay network in etcd (idempotent: every host tries, the first defines it, the others find it unchanged), then
# runs vxlan-router in the foreground (PID 1: `docker stop` sends it SIGTERM and it removes its TAP).
#
# The sample containers are network namespaces inside this service (eth0 = veth into br0), not Docker containers:
# docker-in-docker would need a daemon and images per host. Enter one: ip netns exec c1 ping 198.18.0.31
#
# Environment: UNDERLAY_IP (this service's address on the underlay), ETCD (URL), NETWORK, VNI, SUBNET (overlay),
# SAMPLES ("name=ip name=ip ...", addresses inside SUBNET).
set -eu
say() { echo "host-entrypoint: $*"; }

prefix=${SUBNET#*/}
# The overlay MTU: the underlay interface's MTU minus the VXLAN overhead (50 bytes over IPv4).
dev=$(ip -o -4 addr show to "$UNDERLAY_IP" | awk '{print $2; exit}')
[ -n "$dev" ] || { say "no interface holds $UNDERLAY_IP"; exit 1; }
mtu=$(( $(cat "/sys/class/net/$dev/mtu") - 50 ))

ip link add br0 type bridge   # without IPv6: docker-compose.yml sets net.ipv6.conf.default.disable_ipv6
ip link set br0 up
for s in $SAMPLES; do
  name=${s%%=*} addr=${s#*=}
  ip netns add "$name"
  ip link add eth0 netns "$name" mtu "$mtu" type veth peer name "v$name" mtu "$mtu"
  ip link set "v$name" master br0 up
  ip -n "$name" addr add "$addr/$prefix" dev eth0
  ip -n "$name" link set lo up
  ip -n "$name" link set eth0 up
  say "sample container $name $addr on br0"
done

# etcd may still be starting: retry for a minute.
tries=0
until vxlan-router network create "$NETWORK" --vni "$VNI" --subnet "$SUBNET" --etcd "$ETCD"; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { say "could not define network $NETWORK in etcd at $ETCD"; exit 1; }
  sleep 1
done
exec vxlan-router up --local "$UNDERLAY_IP" --bridge br0 --etcd "$ETCD" --network "$NETWORK"
