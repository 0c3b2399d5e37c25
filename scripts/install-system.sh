#!/usr/bin/env bash
# Debian packages the container tier and the benchmarks need, installed only when missing:
#   docker.io   — Docker engine (tests start their own dockerd, see scripts/docker-engine.sh)
#   docker-compose — runs compose.yaml in the container tier (Debian ships compose v1, 1.29)
#   mmdebstrap  — builds the local base image (Docker Hub is not reachable from CI)
#   podman      — runs the chart's rendered pods (`podman kube play`); catatonit is its pod pause
#                 process (only Recommended by podman, so --no-install-recommends would drop it)
#   nginx-light, wrk — static image server and load generator for bench/
#   curl        — the lesson's client: make demo and the e2e tests send their requests with it
#   containerd, runc, containernetworking-plugins, iptables, conntrack, ipset — the test
#                 cluster's container runtime, pod network and kube-proxy (make cluster-up)
#   busybox-static — the one binary of the cluster's busybox image (volume provisioner helpers)
#   openssl     — the test cluster's certificates
set -euo pipefail
packages=(docker.io docker-compose mmdebstrap podman catatonit nginx-light wrk curl
          containerd runc containernetworking-plugins iptables conntrack ipset busybox-static openssl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "installing Debian packages: ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The distribution's nginx unit may have started a server on :80; the benchmarks start their own.
"${sudo[@]}" systemctl disable --now nginx >/dev/null 2>&1 || "${sudo[@]}" service nginx stop >/dev/null 2>&1 || true
