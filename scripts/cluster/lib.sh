# Shared by scripts/cluster/*.sh (sourced): where the test cluster keeps its state and builds.
#   KS_CLUSTER_HOME   state of the running cluster (certificates, etcd, containerd, kubelet, logs);
#                     default /var/lib/keras-serving/cluster. `down` empties it.
#   KS_CLUSTER_CACHE  builds keyed by their inputs, kept across fresh clones on one machine;
#                     default /var/cache/keras-serving/cluster.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../cluster/cluster.env
source "$ROOT/cluster/cluster.env"
KS_CLUSTER_HOME=${KS_CLUSTER_HOME:-/var/lib/keras-serving/cluster}
KS_CLUSTER_CACHE=${KS_CLUSTER_CACHE:-/var/cache/keras-serving/cluster}
STATE=$KS_CLUSTER_HOME
PKI=$STATE/pki
LOGS=$STATE/logs
RUN=$STATE/run
ADMIN_KUBECONFIG=$STATE/admin.kubeconfig
CONTAINERD_SOCK=$STATE/containerd/containerd.sock
CNI_BRIDGE=ks-cni0

say() { echo "cluster: $*"; }
die() { echo "cluster: $*" >&2; exit 1; }

# The node's address: the one on the interface of the default route (what a kubelet picks).
node_ip() {
  local dev
  dev=$(ip -4 -o route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1); exit}')
  [ -n "$dev" ] || dev=lo
  ip -4 -o addr show dev "$dev" | awk '{split($4, a, "/"); print a[1]; exit}'
}

pid_alive() {  # pid_alive NAME: the process we started as NAME still runs (not a reused pid)
  local pid
  [ -f "$RUN/$1.pid" ] || return 1
  pid=$(cat "$RUN/$1.pid")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE "$STATE|$KS_CLUSTER_CACHE"
}
