#!/usr/bin/env bash
# The local stack as plain processes (no Docker, no cluster): the development model server
# (`model serve`, TF-Serving-compatible) with the bundled demo model, the gateway, and a static
# HTTP server for samples/images/ so that the lesson's {"url": ...} request works offline.
#
#   scripts/stack.sh up     # convert the demo model if needed, start the three, wait for /readyz
#   scripts/stack.sh down   # stop what `up` started (pid files in .run/stack/), wait until gone
#   scripts/stack.sh convert  # only convert the demo model into .run/models (used by compose.yaml)
#
# Each process runs in its own session (setsid) so it outlives `make up`; `down` signals the
# whole process group and checks the pid still belongs to the process we started.
# Ports (override through the environment): GATEWAY_PORT 9696, GRPC_PORT 8500, REST_PORT 8501,
# SAMPLES_PORT 8088. Logs: .run/stack/<name>.log (STACK_DIR moves that folder).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
run=${STACK_DIR:-$root/.run/stack}  # pid files and logs (tests point it at a temporary folder)
models=${MODELS_DIR:-$root/.run/models}  # make release converts into a folder of its own
venv=$root/.venv/bin
name=${MODEL_NAME:-clothing-model}
demo=$root/model/demo
GATEWAY_PORT=${GATEWAY_PORT:-9696}
GRPC_PORT=${GRPC_PORT:-8500}
REST_PORT=${REST_PORT:-8501}
SAMPLES_PORT=${SAMPLES_PORT:-8088}
READY_TIMEOUT=${READY_TIMEOUT:-180}
SERVICES=(model-server samples gateway)

log() { echo "stack: $*" >&2; }

alive() {  # alive NAME: the recorded process still runs (and is the one we started)
  local pidfile=$run/$1.pid pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -qF -- "$(cat "$run/$1.cmd")" "/proc/$pid/cmdline" 2>/dev/null
}

running() {  # running NAME: the recorded pid exists and is not a zombie (used right after start,
  # when the child may not have exec'd its command yet, so alive()'s marker is not there yet)
  local pid
  pid=$(cat "$run/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}

port_in_use() {  # something listens there (a bind test would also trip on TIME_WAIT leftovers)
  python3 -c 'import socket, sys; sys.exit(socket.socket().connect_ex(("127.0.0.1", int(sys.argv[1]))) != 0)' "$1"
}

start() {  # start NAME CMD...: in its own session, pid and a cmdline marker recorded at once
  local svc=$1
  shift
  # A non-interactive shell starts background commands with SIGINT ignored, and Python then
  # installs no KeyboardInterrupt handler (the gateway's drain ends its server with SIGINT):
  # restore the default disposition before exec.
  setsid python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "$@" >>"$run/$svc.log" 2>&1 </dev/null &
  echo $! >"$run/$svc.pid"
  # The marker alive() looks for in /proc/PID/cmdline: the command's last argument.
  printf '%s' "${@: -1}" >"$run/$svc.cmd"
  log "$svc started (pid $!, log .run/stack/$svc.log)"
}

demo_preprocessing() {  # the scaling family the demo model was trained with (its training report)
  "$venv/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["preprocessing"])' "$demo/training-report.json"
}

convert_demo_model() {
  local version=$models/$name/1
  if [ -f "$version/saved_model.pb" ] && [ "$version/saved_model.pb" -nt "$demo/clothing-model.keras" ]; then
    return 0
  fi
  log "converting model/demo/clothing-model.keras -> .run/models/$name/1"
  # uint8 signature: the gateway sends raw pixels (a quarter of the bytes) and the scaling the demo
  # model was trained with runs inside the graph — cheaper for the gateway and the model server
  # alike (bench/results.md). `model convert` without --uint8 keeps the float32 signature.
  "$venv/model" convert "$demo/clothing-model.keras" --labels "$demo/labels.txt" \
    --uint8 --preprocessing "$(demo_preprocessing)" \
    --out "$models" --name "$name" --version 1 --force >>"$run/convert.log" 2>&1 ||
    { tail -n 20 "$run/convert.log" >&2; return 1; }
}

wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT)) svc
  while [ $SECONDS -lt $deadline ]; do
    for svc in "${SERVICES[@]}"; do
      if ! running "$svc"; then
        log "$svc exited during startup; last lines of .run/stack/$svc.log:"
        tail -n 25 "$run/$svc.log" >&2
        return 1
      fi
    done
    if python3 - "http://127.0.0.1:$GATEWAY_PORT/readyz" <<'EOF'
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
    then
      return 0
    fi
    sleep 1
  done
  log "gateway not ready after ${READY_TIMEOUT} s (logs in .run/stack/)"
  return 1
}

up() {
  mkdir -p "$run" "$models"
  local svc port
  for svc in "${SERVICES[@]}"; do
    if alive "$svc"; then log "already running ($svc); use 'make down' first"; return 1; fi
  done
  for port in "$GATEWAY_PORT" "$GRPC_PORT" "$REST_PORT" "$SAMPLES_PORT"; do
    if port_in_use "$port"; then log "port $port is in use on 127.0.0.1; set the *_PORT variables"; return 1; fi
  done
  convert_demo_model
  start model-server "$venv/model" serve --host 127.0.0.1 --port "$GRPC_PORT" --rest_api_port "$REST_PORT" \
    --model_name "$name" --model_base_path "$models/$name"
  start samples "$venv/python" -m http.server "$SAMPLES_PORT" --bind 127.0.0.1 --directory "$root/samples/images"
  # The samples server is on loopback, which the gateway's fetcher refuses unless allowed.
  (
    export TF_SERVING_HOST="127.0.0.1:$GRPC_PORT" MODEL_NAME="$name" PORT="$GATEWAY_PORT" LISTEN_HOST=127.0.0.1 \
      FETCH_ALLOWED_NETWORKS=127.0.0.1/32 FETCH_ALLOWED_PORTS="80,443,$SAMPLES_PORT"
    start gateway "$venv/python" -m gateway
  )
  wait_ready
  log "ready: gateway http://localhost:$GATEWAY_PORT, model server gRPC :$GRPC_PORT REST :$REST_PORT"
  log "try: curl -X POST localhost:$GATEWAY_PORT/predict -H 'Content-Type: application/json' -d '{\"url\": \"http://127.0.0.1:$SAMPLES_PORT/pants.jpg\"}'"
}

down() {
  local svc pid stopped=0
  [ -d "$run" ] || return 0
  for svc in "${SERVICES[@]}"; do
    if alive "$svc"; then
      pid=$(cat "$run/$svc.pid")
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      stopped=1
    fi
  done
  local deadline=$((SECONDS + 30))
  for svc in "${SERVICES[@]}"; do
    while alive "$svc"; do
      if [ $SECONDS -ge $deadline ]; then
        pid=$(cat "$run/$svc.pid")
        log "$svc (pid $pid) ignored SIGTERM for 30 s; killing it"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
        break
      fi
      sleep 0.2
    done
    rm -f "$run/$svc.pid" "$run/$svc.cmd"
  done
  [ $stopped -eq 0 ] || log "stopped"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  convert) mkdir -p "$run" "$models" && convert_demo_model && echo "$models/$name/1" ;;
  *) echo "usage: $0 up|down|convert" >&2; exit 2 ;;
esac
