#!/usr/bin/env bash
# The local stack as plain processes (no Docker, no cluster): the development model server
# (`model serve`, TF-Serving-compatible), the gateway, and a static HTTP server for samples/images/
# so that the lesson's {"url": ...} request works offline.
#
#   scripts/stack.sh up       # serve the demo model (or MODEL=...), start the three, wait for /readyz
#   scripts/stack.sh down     # stop what `up` started (pid files in the state folder), wait until gone
#   scripts/stack.sh convert  # only convert the demo model into .run/models (used by compose.yaml)
#
# MODEL serves your own model instead of the demo's: a Keras file (.keras/.h5, converted with
# LABELS=labels.txt if given) or a SavedModel base folder holding <version>/saved_model.pb.
# MODEL_NAME names it (default clothing-model). Everything `up` makes lives in its state folder
# (STACK_DIR, default .run/stack: pid files, this run's logs, models/); `make demo` uses
# .run/demo, so the two never touch each other's processes or models.
#
# Each process runs in its own session (setsid) so it outlives `make up`; `down` signals the
# whole process group and checks the pid still belongs to the process we started.
# Ports (override through the environment): GATEWAY_PORT 9696, GRPC_PORT 8500, REST_PORT 8501,
# SAMPLES_PORT 8088. Exit status 3: refused before starting anything (already running, port taken).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
run=${STACK_DIR:-$root/.run/stack}  # pid files, logs, models (tests point it at a temporary folder)
venv=$root/.venv/bin
name=${MODEL_NAME:-clothing-model}
demo=$root/model/demo
MODEL=${MODEL:-}
LABELS=${LABELS:-}
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
    "$@" >"$run/$svc.log" 2>&1 </dev/null &  # this run's log only
  echo $! >"$run/$svc.pid"
  # The marker alive() looks for in /proc/PID/cmdline: the command's last argument.
  printf '%s' "${@: -1}" >"$run/$svc.cmd"
  log "$svc started (pid $!, log ${run#"$root"/}/$svc.log)"
}

demo_preprocessing() {  # the scaling family the demo model was trained with (its training report)
  "$venv/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["preprocessing"])' "$demo/training-report.json"
}

convert_demo_model() {  # convert_demo_model DIR: DIR/<name>/1 from the bundled demo model
  local version=$1/$name/1
  if [ -f "$version/saved_model.pb" ] && [ "$version/saved_model.pb" -nt "$demo/clothing-model.keras" ]; then
    return 0
  fi
  log "converting model/demo/clothing-model.keras -> ${1#"$root"/}/$name/1"
  # uint8 signature: the gateway sends raw pixels (a quarter of the bytes) and the scaling the demo
  # model was trained with runs inside the graph — cheaper for the gateway and the model server
  # alike (bench/results.md). `model convert` without --uint8 keeps the float32 signature.
  "$venv/model" convert "$demo/clothing-model.keras" --labels "$demo/labels.txt" \
    --uint8 --preprocessing "$(demo_preprocessing)" \
    --out "$1" --name "$name" --version 1 --force >"$run/convert.log" 2>&1 ||
    { tail -n 20 "$run/convert.log" >&2; return 1; }
}

model_base_path() {  # the base path `up` serves: the demo model, or MODEL converted/used as is
  if [ -z "$MODEL" ]; then
    convert_demo_model "$run/models" && echo "$run/models/$name"
  elif [ -d "$MODEL" ]; then
    [ -n "$(find "$MODEL" -mindepth 2 -maxdepth 2 -name saved_model.pb -path '*/[0-9]*/*' -print -quit)" ] ||
      { log "MODEL=$MODEL holds no <version>/saved_model.pb (model convert writes <out>/<name>/<version>/: pass <out>/<name>)"; return 1; }
    (cd "$MODEL" && pwd)
  elif [ -f "$MODEL" ]; then
    log "converting $MODEL -> ${run#"$root"/}/models/$name/1"
    "$venv/model" convert "$MODEL" ${LABELS:+--labels "$LABELS"} --out "$run/models" --name "$name" --version 1 \
      --force >"$run/convert.log" 2>&1 || { tail -n 20 "$run/convert.log" >&2; return 1; }
    echo "$run/models/$name"
  else
    log "MODEL=$MODEL: no such file or folder (a .keras/.h5 file or a SavedModel base folder)"
    return 1
  fi
}

wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT)) svc
  while [ $SECONDS -lt $deadline ]; do
    for svc in "${SERVICES[@]}"; do
      if ! running "$svc"; then
        log "$svc exited during startup; last lines of ${run#"$root"/}/$svc.log:"
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
  log "gateway not ready after ${READY_TIMEOUT} s (logs in ${run#"$root"/}/)"
  return 1
}

up() {
  mkdir -p "$run"
  local svc port base
  for svc in "${SERVICES[@]}"; do
    if alive "$svc"; then log "already running ($svc, state in ${run#"$root"/}); stop it with its own 'down' first"; return 3; fi
  done
  for port in "$GATEWAY_PORT" "$GRPC_PORT" "$REST_PORT" "$SAMPLES_PORT"; do
    if port_in_use "$port"; then log "port $port is in use on 127.0.0.1 (another stack? make down); or set the *_PORT variables"; return 3; fi
  done
  base=$(model_base_path)
  start model-server "$venv/model" serve --host 127.0.0.1 --port "$GRPC_PORT" --rest_api_port "$REST_PORT" \
    --model_name "$name" --model_base_path "$base"
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
  convert) models=${MODELS_DIR:-$root/.run/models}; mkdir -p "$run" "$models" && convert_demo_model "$models" && echo "$models/$name/1" ;;
  *) echo "usage: $0 up|down|convert" >&2; exit 2 ;;
esac
