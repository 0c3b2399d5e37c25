#!/usr/bin/env bash
# `make demo`: the whole stack on this machine, one real prediction, then a clean shutdown.
# Starts the local stack (scripts/stack.sh: model server with the bundled demo model, gateway,
# a static server for samples/images/), sends the lesson's request
#   curl -X POST localhost:9696/predict -H 'Content-Type: application/json' -d '{"url": ...}'
# for the sample image the demo model's training report names, prints the scores and the top
# class, and stops everything on exit, Ctrl-C or SIGTERM.
#
# The demo keeps its own state (.run/demo: pid files, this run's logs, the converted demo model),
# always serves the bundled demo model (MODEL is ignored), and stops only what it started: with
# `make up` running on the same ports, or another demo, it says so and leaves them alone.
set -euo pipefail
cd "$(dirname "$0")/.."
GATEWAY_PORT=${GATEWAY_PORT:-9696}
SAMPLES_PORT=${SAMPLES_PORT:-8088}
STACK_DIR=${DEMO_DIR:-$PWD/.run/demo}
MODEL=
MODEL_NAME=clothing-model
export GATEWAY_PORT SAMPLES_PORT STACK_DIR MODEL MODEL_NAME

started=0
trap '[ "$started" = 0 ] || scripts/stack.sh down' EXIT
# INT/TERM end the script with the conventional status; the EXIT trap then stops the stack.
trap 'exit 130' INT
trap 'exit 143' TERM

read -r image expected accuracy < <(python3 - <<'EOF'
import json
report = json.load(open("model/demo/training-report.json"))
image = report["demo_image"]
print(image, report["samples"][image]["true"], f'{report["test_accuracy"]:.1%}')
EOF
)

echo "==> starting the local stack (model server, gateway, sample image server)"
started=1
status=0
scripts/stack.sh up || status=$?
if [ "$status" = 3 ]; then
  started=0  # refused before starting anything: what runs there is not ours to stop
  echo "==> not started: see the line above (make down stops a make up stack)" >&2
  exit 1
fi
[ "$status" = 0 ] || exit "$status"

url="http://127.0.0.1:$SAMPLES_PORT/$image"
body="{\"url\": \"$url\"}"
echo "==> curl -X POST localhost:$GATEWAY_PORT/predict -H 'Content-Type: application/json' -d '$body'"
if command -v curl >/dev/null; then
  response=$(curl --silent --show-error --max-time 60 -X POST "localhost:$GATEWAY_PORT/predict" \
    -H 'Content-Type: application/json' -d "$body")
else  # the same request without curl (minimal machines)
  response=$(python3 - "http://localhost:$GATEWAY_PORT/predict" "$body" <<'EOF'
import sys, urllib.error, urllib.request
req = urllib.request.Request(sys.argv[1], sys.argv[2].encode(), {"Content-Type": "application/json"})
try:
    print(urllib.request.urlopen(req, timeout=60).read().decode())
except urllib.error.HTTPError as e:
    print(e.read().decode())
EOF
)
fi
echo "$response"
python3 - "$response" "$expected" "$accuracy" <<'EOF'
import json, sys
scores, expected, accuracy = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
if not isinstance(scores, dict) or "error" in scores:
    sys.exit(f"==> the gateway answered with an error: {sys.argv[1]}")
top = max(scores, key=scores.get)
print(f"==> top class: {top} (score {scores[top]:.3f}; {len(scores)} classes); "
      f"this sample is a {expected}")
print(f"==> the demo model is small and quick to train: {accuracy} top-1 on the dataset's test split "
      "(see model/demo/training-report.json)")
sys.exit(0 if top == expected else 1)
EOF
echo "==> stopping"
