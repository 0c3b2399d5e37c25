#!/usr/bin/env bash
# `make cluster-down`: stop the test cluster and leave nothing behind — no process, mount,
# iptables rule, network namespace, bridge or cgroup of it — then check that nothing is left.
# The component logs of the run are kept in $KS_CLUSTER_HOME.logs (replaced at the next down).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || die "needs root"
[ -d "$STATE" ] || { say "no cluster state at $STATE: nothing to stop"; exit 0; }

stop() {  # stop NAME...: SIGTERM, up to 15 s, then SIGKILL
  local name pid i
  for name in "$@"; do
    pid_alive "$name" || continue
    pid=$(cat "$RUN/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# The node agents first, so that nothing restarts what is stopped next.
stop traefik metrics-server coredns kube-router local-path-provisioner kube-proxy kubelet

# Containers: every process in the pods' cgroups, then the runtime shims of our containerd.
for round in 1 2 3; do
  pids=$(cat /sys/fs/cgroup/pids/kubepods*/cgroup.procs /sys/fs/cgroup/pids/kubepods*/*/cgroup.procs \
    /sys/fs/cgroup/pids/kubepods*/*/*/cgroup.procs /sys/fs/cgroup/pids/kubepods*/*/*/*/cgroup.procs 2>/dev/null || true)
  [ -n "$pids" ] || break
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  sleep 0.5
done
pkill -KILL -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null || true
stop containerd kube-controller-manager kube-scheduler kube-apiserver etcd

# iptables: kube-proxy's own cleanup, then every chain the cluster added (KUBE-* from kube-proxy,
# kubelet and kube-router, CNI-* from the bridge and portmap plugins) and every rule jumping to one.
if [ -x "$STATE/bin/kube-proxy" ]; then
  "$STATE/bin/kube-proxy" --cleanup >>"$LOGS/kube-proxy.log" 2>&1 || true
fi
ours='(KUBE-|CNI-)'
for tool in iptables ip6tables; do
  dump=$("$tool-save" 2>/dev/null) || continue
  if echo "$dump" | grep -qE "^:$ours|-j $ours|^-A $ours"; then
    echo "$dump" | grep -vE "^:$ours|^-A $ours|-j $ours" | "$tool-restore"
  fi
done
ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router)' | xargs -r -n1 ipset destroy 2>/dev/null || true

# Mounts under the state folder (pod volumes, container root filesystems, network namespaces),
# deepest first, and the network namespaces an older containerd keeps in /run/netns.
for round in 1 2 3; do
  mounts=$(findmnt -rn -o TARGET | grep -E "^$STATE/|^/run/netns/cni-|^/var/run/netns/cni-" | awk '{print length, $0}' | sort -rn | cut -d' ' -f2- || true)
  [ -n "$mounts" ] || break
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done <<<"$mounts"
done
for ns in /run/netns/cni-*; do [ -e "$ns" ] && rm -f "$ns"; done
# The CNI plugins turn /run/netns into a (shared) mount point for the namespaces they create:
# once it is empty, nothing of ours needs it mounted.
if mountpoint -q /run/netns && [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then umount /run/netns || true; fi
ip link show "$CNI_BRIDGE" >/dev/null 2>&1 && ip link delete "$CNI_BRIDGE"

# cgroups the kubelet made (empty now), deepest first.
for ctl in /sys/fs/cgroup/*/; do
  [ -d "$ctl/kubepods" ] && find "$ctl/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done

# Kernel settings back as they were.
if [ -f "$STATE/sysctl.saved" ]; then
  while IFS= read -r line; do sysctl -q -w "$line" || true; done <"$STATE/sysctl.saved"
fi
find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true

rm -rf "$STATE.logs"
mv "$LOGS" "$STATE.logs" 2>/dev/null || true
rm -rf "$STATE"

# Check: anything of the cluster still here is a failure of `down`.
left=()
p=$(pgrep -af "$KS_CLUSTER_CACHE/|$STATE/|containerd-shim-runc-v2 .*$CONTAINERD_SOCK" || true)
[ -z "$p" ] || left+=("processes: $p")
m=$(findmnt -rn -o TARGET | grep -E "^$STATE|/netns/cni-" || true)
[ -z "$m" ] || left+=("mounts: $m")
r=$( { iptables-save; ip6tables-save; } 2>/dev/null | grep -E "^:$ours|-j $ours" || true)
[ -z "$r" ] || left+=("iptables: $r")
n=$(ip netns list 2>/dev/null | grep -E '^cni-' || true)
[ -z "$n" ] || left+=("network namespaces: $n")
! ip link show "$CNI_BRIDGE" >/dev/null 2>&1 || left+=("bridge $CNI_BRIDGE")
if [ ${#left[@]} -gt 0 ]; then
  printf 'cluster: down left behind:\n' >&2
  printf '  %s\n' "${left[@]}" >&2
  exit 1
fi
say "stopped; nothing left behind (logs of this run: $STATE.logs)"
