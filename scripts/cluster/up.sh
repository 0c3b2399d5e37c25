#!/usr/bin/env bash
# `make cluster-up`: a single-node Kubernetes on this machine, every part built here.
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler   (cluster/kube, one binary)
#   kubelet on containerd + runc (Debian) with the bridge CNI plugin (Debian), kube-proxy
#   CoreDNS (cluster DNS at KS_DNS_SERVICE_IP), metrics-server (HPA CPU figures),
#   Traefik (IngressClass KS_INGRESS_CLASS on :KS_INGRESS_HTTP_PORT), kube-router (NetworkPolicy),
#   local-path-provisioner (StorageClass KS_STORAGE_CLASS)
# The node agents and add-ons run as processes on the node with their own kubeconfig and RBAC
# user (what kubeadm's static pods would be, without a registry to pull their images from).
# Idempotent: a running component is left alone. Prints the kubeconfig to use on its last line.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || die "needs root (kubelet, containerd and iptables do)"
for cmd in containerd runc iptables ip6tables conntrack ipset openssl curl; do
  command -v "$cmd" >/dev/null || die "$cmd is missing: make system installs it"
done
[ -x /usr/lib/cni/bridge ] || die "CNI plugins missing: make system installs containernetworking-plugins"
export PATH=$ROOT/.tools/bin:$PATH
command -v kubectl >/dev/null || die "kubectl missing: make tools installs it"

started=$SECONDS
bin=$("$ROOT/scripts/cluster/build.sh" | tail -n 1)
build_seconds=$((SECONDS - started))
node_ip=$(node_ip)
[ -n "$node_ip" ] || die "no IPv4 address on the default route's interface"
# State left by a cluster whose processes were killed without `down` (a machine handed on, a
# stopped session): clean it up first, or etcd and the kubelet would bring the old pods back.
if [ -d "$STATE" ] && ! pid_alive etcd; then
  say "cleaning up the state of a cluster that was not stopped with make cluster-down"
  "$ROOT/scripts/cluster/down.sh" >&2
fi
mkdir -p "$STATE" "$LOGS" "$RUN"
exec 8>"$STATE/up.lock"
flock -w 600 8 || die "another cluster-up holds $STATE/up.lock"
"$ROOT/scripts/cluster/pki.sh" "$node_ip"
ln -sfn "$bin" "$STATE/bin"
export KUBECONFIG=$ADMIN_KUBECONFIG

# Kernel settings a node needs; the old values go back at `down`.
if [ ! -f "$STATE/sysctl.saved" ]; then
  for key in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables; do
    echo "$key=$(sysctl -n "$key")"
  done >"$STATE/sysctl.saved"
fi
sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1

start() {  # start NAME COMMAND...: run in its own session, log and pid under the state folder
  local name=$1
  shift
  if pid_alive "$name"; then return 0; fi
  echo "---- $(date -u +%FT%TZ) $*" >>"$LOGS/$name.log"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 8>&- &
  echo $! >"$RUN/$name.pid"
}

wait_for() {  # wait_for NAME SECONDS COMMAND...: until COMMAND succeeds, or fail with NAME's log
  local name=$1 seconds=$2 i
  shift 2
  for ((i = 0; i < seconds * 2; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    pid_alive "$name" || break
    sleep 0.5
  done
  echo "cluster: $name did not come up; last lines of $LOGS/$name.log:" >&2
  tail -n 40 "$LOGS/$name.log" >&2
  exit 1
}

api_get() { curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://$node_ip:$KS_API_PORT$1"; }

# ---- etcd --------------------------------------------------------------------------------------
# A throwaway single member: no fsync (the state is deleted at `down`).
start etcd "$bin/etcd" --name ks --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$KS_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$KS_ETCD_PORT" \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster ks=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
  --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn
wait_for etcd 60 curl -sf "http://127.0.0.1:2381/health"

# ---- containerd --------------------------------------------------------------------------------
mkdir -p "$STATE/containerd" "$STATE/cni/net.d" "$STATE/cni/ipam"
cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$KS_PAUSE_IMAGE"
  # This sandbox has no CAP_SYS_RESOURCE: a negative oom_score_adj (the kubelet asks -998 for
  # pod sandboxes) is refused, so keep every container's at or above containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$STATE/containerd/certs.d"
EOF
cat >"$STATE/cni/net.d/10-keras-serving.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "keras-serving-pods",
  "plugins": [
    {
      "type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam",
               "ranges": [[{"subnet": "$KS_POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
# make registry-up's registry (where make release pushes by default) is pullable out of the box.
"$ROOT/scripts/cluster/trust-registry.sh" 127.0.0.1:5000 >/dev/null
start containerd containerd --config "$STATE/containerd/config.toml"
ctr() { command ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
wait_for containerd 60 ctr version
for archive in "$bin"/images/*.tar; do
  ctr images import --no-unpack=false "$archive" >/dev/null
done

# ---- control plane -----------------------------------------------------------------------------
[ -f "$PKI/tokens.csv" ] || {
  # Traefik's Kubernetes provider authenticates with a bearer token only (no client certificates).
  token=$(openssl rand -hex 24)
  echo "$token,keras-serving:traefik,keras-serving:traefik" >"$PKI/tokens.csv"
  echo "$token" >"$PKI/traefik.token"
  chmod 600 "$PKI/tokens.csv" "$PKI/traefik.token"
}
start kube-apiserver "$bin/kube-apiserver" \
  --advertise-address "$node_ip" --bind-address 0.0.0.0 --secure-port "$KS_API_PORT" \
  --etcd-servers "http://127.0.0.1:$KS_ETCD_PORT" \
  --service-cluster-ip-range "$KS_SERVICE_CIDR" --service-node-port-range 30000-32767 \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" --token-auth-file "$PKI/tokens.csv" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
  --service-account-issuer "https://kubernetes.default.svc.$KS_CLUSTER_DOMAIN" \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --allow-privileged=true \
  --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
  --enable-aggregator-routing=true --profiling=false
wait_for kube-apiserver 120 api_get /readyz

start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE/kube-controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" \
  --service-cluster-ip-range "$KS_SERVICE_CIDR" --cluster-cidr "$KS_POD_CIDR" --allocate-node-cidrs=true \
  --node-cidr-mask-size 24 --controllers '*,bootstrapsigner,tokencleaner' \
  --horizontal-pod-autoscaler-sync-period 5s --profiling=false
start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$STATE/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig "$STATE/kube-scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --profiling=false

# What the add-ons on the node need from the API before they start (RBAC, Services, classes).
sed -e "s|@NODE_IP@|$node_ip|g" -e "s|@DNS_IP@|$KS_DNS_SERVICE_IP|g" \
  -e "s|@METRICS_PORT@|$KS_METRICS_SERVER_PORT|g" -e "s|@INGRESS_CLASS@|$KS_INGRESS_CLASS|g" \
  -e "s|@STORAGE_CLASS@|$KS_STORAGE_CLASS|g" -e "s|@CA_BUNDLE@|$(base64 -w0 <"$PKI/ca.crt")|g" \
  -e "s|@LOCAL_PATH_DIR@|$STATE/local-path|g" -e "s|@BUSYBOX_IMAGE@|$KS_BUSYBOX_IMAGE|g" \
  "$ROOT"/cluster/manifests/*.yaml | kubectl apply --server-side --force-conflicts -f - >"$LOGS/manifests.log"

# ---- the node ----------------------------------------------------------------------------------
mkdir -p "$STATE/kubelet" "$STATE/pod-logs"
cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
# These VMs mount the cgroup v1 hierarchy and run no systemd.
cgroupDriver: cgroupfs
failCgroupV1: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
clusterDNS: [$KS_DNS_SERVICE_IP]
clusterDomain: $KS_CLUSTER_DOMAIN
podLogsDir: $STATE/pod-logs
failSwapOn: false
serializeImagePulls: false
# A test node on a shared disk: evict only when the disk is really full.
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 98
imageGCLowThresholdPercent: 95
EOF
start kubelet "$bin/kubelet" --config "$STATE/kubelet.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
  --root-dir "$STATE/kubelet" --hostname-override "$KS_NODE_NAME" --node-ip "$node_ip"
cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
hostnameOverride: $KS_NODE_NAME
mode: iptables
clusterCIDR: $KS_POD_CIDR
conntrack: {maxPerCore: 0}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
start kube-proxy "$bin/kube-proxy" --config "$STATE/kube-proxy.yaml"

# ---- add-ons -----------------------------------------------------------------------------------
cat >"$STATE/Corefile" <<EOF
$KS_CLUSTER_DOMAIN:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $node_ip
    errors
    health 127.0.0.1:18080
    ready 127.0.0.1:18181
    kubernetes $KS_CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $STATE/coredns.kubeconfig keras-serving-test
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    loadbalance
}
EOF
start coredns "$bin/coredns" -conf "$STATE/Corefile"
start metrics-server "$bin/metrics-server" --kubeconfig "$STATE/metrics-server.kubeconfig" \
  --authentication-kubeconfig "$STATE/metrics-server.kubeconfig" \
  --authorization-kubeconfig "$STATE/metrics-server.kubeconfig" \
  --bind-address "$node_ip" --secure-port "$KS_METRICS_SERVER_PORT" \
  --tls-cert-file "$PKI/metrics-server-serving.crt" --tls-private-key-file "$PKI/metrics-server-serving.key" \
  --kubelet-preferred-address-types InternalIP --kubelet-certificate-authority "$PKI/ca.crt" \
  --metric-resolution 15s
start traefik "$bin/traefik" --global.checkNewVersion=false --global.sendAnonymousUsage=false \
  --entryPoints.web.address=":$KS_INGRESS_HTTP_PORT" --ping=true --entryPoints.ping.address=127.0.0.1:18082 \
  --ping.entryPoint=ping --providers.kubernetesIngress=true \
  --providers.kubernetesIngress.endpoint="https://$node_ip:$KS_API_PORT" \
  --providers.kubernetesIngress.token="$(cat "$PKI/traefik.token")" \
  --providers.kubernetesIngress.certAuthFilePath="$PKI/ca.crt" \
  --providers.kubernetesIngress.ingressEndpoint.ip="$node_ip" --log.level=INFO --accessLog=false

# NetworkPolicy: kube-router's firewall only (the bridge plugin routes, kube-proxy proxies). It
# finds its node by name: start it once the kubelet has registered the node.
node_ready() { kubectl get node "$KS_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True; }
wait_for kubelet 180 node_ready
start kube-router "$bin/kube-router" --kubeconfig "$STATE/kube-router.kubeconfig" \
  --hostname-override "$KS_NODE_NAME" --run-firewall=true --run-router=false --run-service-proxy=false \
  --enable-cni=false --enable-ipv6=false --metrics-port 0 --health-port 20244

# Dynamic volumes (StorageClass KS_STORAGE_CLASS): a directory under the state folder per claim.
mkdir -p "$STATE/local-path"
start local-path-provisioner "$bin/local-path-provisioner" --debug start --namespace local-path-storage \
  --kubeconfig "$STATE/local-path-provisioner.kubeconfig" --configmap-name local-path-config \
  --helper-image "$KS_BUSYBOX_IMAGE" --service-account-name local-path-provisioner-service-account \
  --provisioner-name rancher.io/local-path

# ---- ready -------------------------------------------------------------------------------------
wait_for coredns 60 curl -sf http://127.0.0.1:18181/ready
wait_for traefik 60 curl -sf http://127.0.0.1:18082/ping
wait_for metrics-server 120 kubectl get --raw /apis/metrics.k8s.io/v1beta1/nodes
wait_for kube-router 60 curl -sf http://127.0.0.1:20244/healthz
# The figures of the up that started the cluster (a later up of a running cluster keeps them).
[ -f "$STATE/timings.env" ] || cat >"$STATE/timings.env" <<EOF
KS_CLUSTER_BUILD_SECONDS=$build_seconds
KS_CLUSTER_UP_SECONDS=$((SECONDS - started))
EOF
say "ready in $((SECONDS - started)) s (build $build_seconds s); node $KS_NODE_NAME at $node_ip, ingress http://$node_ip:$KS_INGRESS_HTTP_PORT"
echo "$ADMIN_KUBECONFIG"
