#!/usr/bin/env bash
# A local OCI registry on loopback for `make release` (make registry-up / registry-down):
#   scripts/release/registry.sh start [ADDR]   # default 127.0.0.1:5000; storage in .run/registry
#   scripts/release/registry.sh stop
# Idempotent: start does nothing when a registry already answers at ADDR.
set -euo pipefail
cd "$(dirname "$0")/../.."
state=$PWD/.run/registry
addr=${2:-${REGISTRY_ADDR:-127.0.0.1:5000}}
case "${1:-}" in
  start)
    if curl -fsS -o /dev/null "http://$addr/v2/"; then echo "registry: already answering at $addr"; exit 0; fi
    command -v registry >/dev/null || { echo "registry: not on PATH (make tools builds it)" >&2; exit 1; }
    mkdir -p "$state/data"
    REGISTRY_HTTP_ADDR=$addr REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=$state/data \
      nohup registry serve scripts/release/registry.yml >"$state/registry.log" 2>&1 &
    echo $! >"$state/pid"
    for _ in $(seq 50); do
      curl -fsS -o /dev/null "http://$addr/v2/" && { echo "registry: http://$addr (storage $state/data)"; exit 0; }
      kill -0 "$(cat "$state/pid")" 2>/dev/null || break
      sleep 0.2
    done
    echo "registry: did not start; its log:" >&2; tail -n 20 "$state/registry.log" >&2; exit 1 ;;
  stop)
    if [ -f "$state/pid" ]; then kill "$(cat "$state/pid")" 2>/dev/null || true; rm -f "$state/pid"; fi
    echo "registry: stopped" ;;
  *) echo "usage: $0 start|stop [ADDR]" >&2; exit 2 ;;
esac
