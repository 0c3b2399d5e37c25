#!/usr/bin/env bash
# Certificates and kubeconfigs of the test cluster (openssl, ECDSA P-256), made once per state
# folder: a cluster CA and a front-proxy CA, the API server's serving and client certificates,
# one client certificate per component (its user name is what RBAC grants), the service-account
# signing key, and a kubeconfig per client.
#   scripts/cluster/pki.sh NODE_IP
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
node_ip=${1:?usage: pki.sh NODE_IP}
mkdir -p "$PKI"
cd "$PKI"
[ -f .complete ] && [ "$(cat .node-ip 2>/dev/null)" = "$node_ip" ] && exit 0
rm -f ./*

key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }

ca() {  # ca NAME CN
  key "$1"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 3650 -out "$1.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

cert() {  # cert NAME SUBJECT USAGE(client|server|both) [SAN] [CA]
  local name=$1 subject=$2 usage=$3 san=${4:-} signer=${5:-ca} ext
  key "$name"
  case $usage in
    client) ext="extendedKeyUsage=clientAuth" ;;
    server) ext="extendedKeyUsage=serverAuth" ;;
    both) ext="extendedKeyUsage=serverAuth,clientAuth" ;;
  esac
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "$ext"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } >"$name.ext"
  openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA "$signer.crt" -CAkey "$signer.key" -CAcreateserial -days 3650 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

ca ca keras-serving-test-ca
ca front-proxy-ca keras-serving-test-front-proxy-ca
d=$KS_CLUSTER_DOMAIN
cert apiserver "/CN=kube-apiserver" server \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$d,DNS:localhost,IP:127.0.0.1,IP:$KS_API_SERVICE_IP,IP:$node_ip"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client
cert front-proxy-client "/CN=front-proxy-client" client "" front-proxy-ca
cert kubelet "/CN=$KS_NODE_NAME" server "DNS:$KS_NODE_NAME,IP:$node_ip,IP:127.0.0.1"
cert metrics-server-serving "/CN=metrics-server" server "DNS:metrics-server.kube-system.svc,IP:$node_ip"
cert admin "/O=system:masters/CN=kubernetes-admin" client
cert kube-controller-manager "/CN=system:kube-controller-manager" client
cert kube-scheduler "/CN=system:kube-scheduler" client
cert kubelet-client "/O=system:nodes/CN=system:node:$KS_NODE_NAME" client
cert kube-proxy "/CN=system:kube-proxy" client
# Add-ons that run on the node: RBAC for these users is in cluster/manifests/addons-rbac.yaml.
for addon in coredns metrics-server local-path-provisioner kube-router; do
  cert "$addon" "/CN=keras-serving:$addon" client
done
key sa
openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null

kubeconfig() {  # kubeconfig NAME CERT
  cat >"$STATE/$1.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: keras-serving-test
    cluster:
      server: https://$node_ip:$KS_API_PORT
      certificate-authority: $PKI/ca.crt
users:
  - name: $1
    user:
      client-certificate: $PKI/$2.crt
      client-key: $PKI/$2.key
contexts:
  - name: keras-serving-test
    context: {cluster: keras-serving-test, user: $1}
current-context: keras-serving-test
KUBECONFIG
}
for c in admin kube-controller-manager kube-scheduler kube-proxy coredns metrics-server local-path-provisioner kube-router; do
  kubeconfig "$c" "$c"
done
kubeconfig kubelet kubelet-client
chmod 600 ./*.key "$STATE"/*.kubeconfig
echo "$node_ip" >.node-ip
touch .complete
