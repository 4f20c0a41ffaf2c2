#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 / Node 20 machine: the lab's apt packages (as root), the npm dependencies
# (npm ci when package-lock.json changed), and the build (native addon when its sources changed, TypeScript always).
# Used by `npm test` (pretest) and `npm run demo`; safe to run any number of times.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

# Tools the lab, the tests, the demo and the benchmarks drive.
# docker-compose: test/compose/compose-config.test.ts validates docker-compose.yml with it (no daemon needed; the
# lab run itself, test/compose/run-lab.sh, installs debootstrap on its own).
# docker.io, busybox-static, iptables, curl: test/lab/docker-plugin.test.ts runs a dockerd of its own in each lab host
# (src/lab/dockerd.ts) with an image made from busybox-static; the machine's own Docker service is not started.
APT_PACKAGES=(iproute2 ethtool iperf3 sockperf iputils-ping tcpdump tshark socat etcd-server etcd-client docker-compose docker.io busybox-static iptables curl)

install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && { say "apt packages present"; return; }
  if [ "$(id -u)" -ne 0 ]; then
    say "not root: cannot install ${missing[*]} (lab tests will skip; run as root to install)"
    return
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
  apt-get update -qq
  # Packages with services (docker.io) must not start them: the tests run their own daemons in namespaces.
  local norc=/usr/sbin/policy-rc.d made=''
  if [ ! -e "$norc" ]; then printf '#!/bin/sh\nexit 101\n' >"$norc" && chmod +x "$norc" && made=1; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || { [ -n "$made" ] && rm -f "$norc"; return 1; }
  [ -n "$made" ] && rm -f "$norc"
  return 0
}

install_npm() {
  local want have=''
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  [ -f node_modules/.setup-stamp ] && have=$(cat node_modules/.setup-stamp)
  if [ -d node_modules ] && [ "$want" = "$have" ]; then say "npm dependencies up to date"; return; fi
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.setup-stamp
}

build() {
  local addon=native/build/Release/vxlan_native.node
  if [ ! -f "$addon" ] || [ -n "$(find native/binding.gyp native/src -newer "$addon" -print -quit)" ]; then
    say "building the native addon"
    npm run --silent build:native >/dev/null
  else
    say "native addon up to date"
  fi
  say "compiling TypeScript"
  npm run --silent build:ts
}

install_apt
install_npm
build
say "ready"
