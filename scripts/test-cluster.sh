#!/usr/bin/env bash
# `make test-cluster`: the checks that need a live Kubernetes cluster (kind, EKS, ...), run
# against kubectl's current context. Not part of `make test`: no cluster exists on CI machines.
#
#   1. helm install (model version FROM), wait for both rollouts
#   2. helm test (the chart's test pod: python -m gateway.selftest through the gateway Service)
#   3. helm upgrade to model version TO while a request loop runs through the gateway; count
#      failed requests (the model servers roll one by one, the gateways must not roll at all)
#   4. helm rollback to revision 1 under the same loop, helm test again
#   5. helm uninstall and delete the namespace (also on failure or Ctrl-C)
#
# Environment:
#   NAMESPACE (default keras-serving-test-<pid>, created and deleted), RELEASE (default serving)
#   VALUES          extra values files, space-separated (e.g. your registry's image names)
#   FROM_VERSION=1 TO_VERSION=2   model versions; both must exist in the model source
#                   (model images <repository>:1 and :2 for the default `image` source)
#   UPGRADE_ARGS    extra flags for the upgrade (e.g. a new url + sha256 for the `url` source)
#   MAX_FAILED=0    failed requests tolerated during upgrade and rollback
#   SAMPLE          image sent by the request loop (default samples/images/<demo image>)
#   TIMEOUT=10m     helm --timeout for each step
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.tools/bin:$PATH

RELEASE=${RELEASE:-serving}
NAMESPACE=${NAMESPACE:-keras-serving-test-$$}
FROM_VERSION=${FROM_VERSION:-1}
TO_VERSION=${TO_VERSION:-2}
MAX_FAILED=${MAX_FAILED:-0}
TIMEOUT=${TIMEOUT:-10m}
SAMPLE=${SAMPLE:-samples/images/$(python3 -c 'import json; print(json.load(open("model/demo/training-report.json"))["demo_image"])')}
LOCAL_PORT=${LOCAL_PORT:-19696}
read -r -a upgrade_args <<<"${UPGRADE_ARGS:-}"
values=()
for f in ${VALUES:-}; do values+=(-f "$f"); done
work=$(mktemp -d)
pf_pid=""
loop_pid=""
created_ns=0

say() { echo "==> $*"; }
fail() { echo "test-cluster: FAILED: $*" >&2; exit 1; }

cleanup() {
  set +e
  [ -z "$loop_pid" ] || kill "$loop_pid" 2>/dev/null
  [ -z "$pf_pid" ] || kill "$pf_pid" 2>/dev/null
  if helm status "$RELEASE" -n "$NAMESPACE" >/dev/null 2>&1; then
    say "helm uninstall $RELEASE"
    helm uninstall "$RELEASE" -n "$NAMESPACE" --wait --timeout "$TIMEOUT"
  fi
  [ $created_ns -eq 0 ] || kubectl delete namespace "$NAMESPACE" --wait=false
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

deployment() {  # deployment COMPONENT -> name of the release's Deployment for that component
  kubectl get deployment -n "$NAMESPACE" \
    -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=$1" -o jsonpath='{.items[0].metadata.name}'
}

wait_rollouts() {
  local c
  for c in model-server gateway; do
    kubectl rollout status "deployment/$(deployment "$c")" -n "$NAMESPACE" --timeout "$TIMEOUT"
  done
}

served_version() {  # the model version label on the model-server pod template
  kubectl get "deployment/$(deployment model-server)" -n "$NAMESPACE" \
    -o jsonpath='{.spec.template.metadata.labels.keras-serving\.io/model-version}'
}

gateway_generation() {
  kubectl get "deployment/$(deployment gateway)" -n "$NAMESPACE" -o jsonpath='{.metadata.generation}'
}

start_port_forward() {
  local svc
  svc=$(kubectl get service -n "$NAMESPACE" \
    -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=gateway" -o jsonpath='{.items[0].metadata.name}')
  kubectl port-forward -n "$NAMESPACE" "service/$svc" "$LOCAL_PORT:http" >"$work/port-forward.log" 2>&1 &
  pf_pid=$!
  for _ in $(seq 1 30); do
    curl -fsS "http://127.0.0.1:$LOCAL_PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 1
  done
  cat "$work/port-forward.log" >&2
  fail "port-forward to service/$svc did not answer"
}

# Sends predictions back to back until $work/stop exists; appends one status code per request.
request_loop() {
  local out=$1
  python3 - "http://127.0.0.1:$LOCAL_PORT/predict" "$SAMPLE" "$work/stop" "$out" <<'EOF'
import base64, json, os, sys, time, urllib.error, urllib.request
url, sample, stop, out = sys.argv[1:]
body = json.dumps({"image": base64.b64encode(open(sample, "rb").read()).decode()}).encode()
with open(out, "w") as fh:
    while not os.path.exists(stop):
        try:
            req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
            status = urllib.request.urlopen(req, timeout=30).status
        except urllib.error.HTTPError as e:
            status = e.code
        except Exception:
            status = 0
        fh.write(f"{status}\n")
        fh.flush()
        time.sleep(0.05)
EOF
}

under_load() {  # under_load NAME CMD...: run CMD while the request loop runs; check failures
  local name=$1 total failed
  shift
  rm -f "$work/stop"
  request_loop "$work/$name.codes" &
  loop_pid=$!
  sleep 2
  "$@"
  touch "$work/stop"
  wait "$loop_pid"
  loop_pid=""
  total=$(wc -l <"$work/$name.codes")
  failed=$(grep -vc '^200$' "$work/$name.codes" || true)
  say "$name: $total requests, $failed failed"
  [ "$total" -gt 0 ] || fail "$name: the request loop sent nothing"
  [ "$failed" -le "$MAX_FAILED" ] || fail "$name: $failed failed requests (MAX_FAILED=$MAX_FAILED)"
}

say "cluster: $(kubectl config current-context)"
kubectl version >/dev/null || fail "no cluster answers (kubectl version)"
if ! kubectl get namespace "$NAMESPACE" >/dev/null 2>&1; then
  kubectl create namespace "$NAMESPACE"
  created_ns=1
fi

say "helm install $RELEASE (model version $FROM_VERSION) into $NAMESPACE"
helm install "$RELEASE" . -n "$NAMESPACE" "${values[@]}" --set "global.model.version=$FROM_VERSION" \
  --wait --timeout "$TIMEOUT"
wait_rollouts
[ "$(served_version)" = "$FROM_VERSION" ] || fail "model server template is not at version $FROM_VERSION"

say "helm test"
helm test "$RELEASE" -n "$NAMESPACE" --logs --timeout "$TIMEOUT"

start_port_forward
gateway_gen=$(gateway_generation)

say "helm upgrade to model version $TO_VERSION under load"
under_load upgrade helm upgrade "$RELEASE" . -n "$NAMESPACE" --reuse-values \
  --set "global.model.version=$TO_VERSION" "${upgrade_args[@]}" --wait --timeout "$TIMEOUT"
wait_rollouts
[ "$(served_version)" = "$TO_VERSION" ] || fail "model server did not move to version $TO_VERSION"
[ "$(gateway_generation)" = "$gateway_gen" ] || fail "a model upgrade rolled the gateway Deployment"

say "helm rollback to revision 1 under load"
under_load rollback helm rollback "$RELEASE" 1 -n "$NAMESPACE" --wait --timeout "$TIMEOUT"
wait_rollouts
[ "$(served_version)" = "$FROM_VERSION" ] || fail "rollback did not restore version $FROM_VERSION"
helm test "$RELEASE" -n "$NAMESPACE" --logs --timeout "$TIMEOUT"

say "all cluster checks passed; uninstalling"
