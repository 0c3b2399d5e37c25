#!/usr/bin/env bash
# Let the test cluster's containerd pull from a plain-HTTP registry on loopback (the node is this
# machine, so 127.0.0.1 is the registry of `make registry-up` / the tests):
#   scripts/cluster/trust-registry.sh [HOST:PORT]     # default 127.0.0.1:5000
# Writes <KS_CLUSTER_HOME>/containerd/certs.d/HOST:PORT/hosts.toml, which containerd's CRI reads
# on every pull (no restart). Only loopback addresses are accepted: nothing else goes over HTTP.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
addr=${1:-127.0.0.1:5000}
[[ $addr =~ ^(127\.[0-9]+\.[0-9]+\.[0-9]+|localhost):[0-9]+$ ]] || die "trust-registry: $addr is not a loopback host:port"
dir=$STATE/containerd/certs.d/$addr
mkdir -p "$dir"
cat >"$dir/hosts.toml.partial" <<TOML
server = "http://$addr"
[host."http://$addr"]
  capabilities = ["pull", "resolve"]
TOML
mv "$dir/hosts.toml.partial" "$dir/hosts.toml"
say "containerd pulls from http://$addr"
