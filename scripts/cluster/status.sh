#!/usr/bin/env bash
# Exit 0 when the test cluster's API server answers (and print its kubeconfig), else 1.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
[ -f "$ADMIN_KUBECONFIG" ] && pid_alive kube-apiserver && pid_alive kubelet || exit 1
curl -sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
  "https://$(node_ip):$KS_API_PORT/readyz" >/dev/null || exit 1
echo "$ADMIN_KUBECONFIG"
