#!/usr/bin/env bash
# Start or stop the Docker engine the container tests use (idempotent).
#
#   scripts/docker-engine.sh start   # prints "started" or "running"; exit 0 once `docker info` answers
#   scripts/docker-engine.sh stop    # stops the dockerd this script started (never someone else's)
#   scripts/docker-engine.sh status  # exit 0 if an engine answers on the socket
#
# CI machines have docker.io installed but no engine running (and no systemd to start one), so
# the tests start their own dockerd. If an engine already answers on the socket, it is used as is
# and `stop` leaves it alone. The data root lives outside the checkout so that built images (the
# base image above all) survive between fresh clones on the same machine.
#
# Environment: DOCKER_ENGINE_HOME (state: data root, pid file, log; default
# /var/lib/keras-serving/docker-engine), DOCKER_HOST (default unix:///var/run/docker.sock).
set -euo pipefail

home=${DOCKER_ENGINE_HOME:-/var/lib/keras-serving/docker-engine}
host=${DOCKER_HOST:-unix:///var/run/docker.sock}
pidfile=$home/dockerd.pid
logfile=$home/dockerd.log
export DOCKER_HOST=$host

answers() { timeout 10 docker info >/dev/null 2>&1; }

our_pid() {
  # The pid in our pid file, if that process is still a dockerd.
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -q dockerd "/proc/$pid/comm" 2>/dev/null && echo "$pid"
}

start() {
  mkdir -p "$home"
  # Serialise concurrent starts (several test sessions on one machine).
  exec 9>"$home/lock"
  flock -w 120 9 || { echo "docker-engine: $home/lock is held by another start" >&2; return 1; }
  if answers; then echo "running"; return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "docker-engine: no engine answers at $host and starting dockerd needs root" >&2
    return 1
  fi
  case $host in
    unix://*) rm -f "${host#unix://}" ;;  # a stale socket left by a killed engine
    *) echo "docker-engine: can only start an engine on a unix socket, not $host" >&2; return 1 ;;
  esac
  command -v dockerd >/dev/null || { echo "docker-engine: dockerd missing (make system)" >&2; return 1; }
  # setsid: the engine must not die with the shell or pytest process group that started it.
  setsid dockerd --data-root "$home/data" --exec-root "$home/exec" --pidfile "$pidfile" \
    --host "$host" --storage-driver overlay2 >>"$logfile" 2>&1 </dev/null 9>&- &
  for _ in $(seq 1 120); do
    if answers; then echo "started"; return 0; fi
    sleep 0.5
  done
  echo "docker-engine: dockerd did not answer within 60 s; last log lines:" >&2
  tail -n 30 "$logfile" >&2
  return 1
}

stop() {
  local pid
  pid=$(our_pid) || { echo "docker-engine: no dockerd started by this script is running"; return 0; }
  kill -TERM "$pid"
  # dockerd stops its containers (10 s grace each) and its managed containerd before it exits.
  for _ in $(seq 1 120); do
    if [ ! -d "/proc/$pid" ]; then
      # dockerd leaves its default network namespace bind-mounted in the exec root.
      for ns in "$home/exec/netns/"*; do [ -e "$ns" ] && umount "$ns" 2>/dev/null; done
      echo "stopped"
      return 0
    fi
    sleep 0.5
  done
  echo "docker-engine: dockerd $pid still running after 60 s, killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) answers ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
