#!/usr/bin/env bash
# Make sure a Docker engine answers; start Debian's dockerd in the background if not.
#
#   test/lab/hosts/ensure-docker.sh
#
# Environment:
#   ENSSIB_DOCKERD_FLAGS   extra flags for dockerd (e.g. "--iptables=false"); when
#                          unset, plain dockerd is tried first, then fallbacks (see below).
#   ENSSIB_DOCKERD_LOG     log file (default /var/log/enssib-dockerd.log)
#   ENSSIB_DOCKERD_TIMEOUT seconds to wait for the engine (default 60)
#
# Idempotent and safe to run concurrently (a lock serialises the start).
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }
die() { printf 'ensure-docker: ERROR: %s\n' "$*" >&2; exit 1; }

DOCKERD=${ENSSIB_DOCKERD:-/usr/sbin/dockerd}
LOG=${ENSSIB_DOCKERD_LOG:-/var/log/enssib-dockerd.log}
TIMEOUT=${ENSSIB_DOCKERD_TIMEOUT:-60}
PIDFILE=/var/run/docker.pid
LOCK=/run/enssib-dockerd.lock

command -v docker >/dev/null || die "no docker client on PATH"

answers() { timeout 10 docker info >/dev/null 2>&1; }

if answers; then
  exit 0
fi

if [[ -n ${DOCKER_HOST:-} ]]; then
  die "DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local dockerd for a remote engine"
fi
[[ $(id -u) -eq 0 ]] || die "the Docker engine does not answer and starting dockerd needs root"
[[ -x $DOCKERD ]] || die "$DOCKERD not found: apt-get install -y docker.io"

exec 9>"$LOCK"
flock -w "$((TIMEOUT + 30))" 9 || die "timed out waiting for the lock $LOCK"

# Another caller may have started it while we waited for the lock.
if answers; then
  exit 0
fi

dockerd_pid() {
  local pid
  [[ -s $PIDFILE ]] || return 1
  pid=$(<"$PIDFILE")
  [[ -n $pid && -d /proc/$pid ]] || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] || return 1
  printf '%s\n' "$pid"
}

# Wait until the engine answers, the given dockerd dies, or the deadline passes.
wait_for() {
  local pid=$1 deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    answers && return 0
    [[ -d /proc/$pid ]] || return 1
    sleep 0.5
  done
  return 2
}

if pid=$(dockerd_pid); then
  log "dockerd (pid $pid) is running but not answering yet; waiting up to ${TIMEOUT}s"
  if wait_for "$pid"; then exit 0; fi
  die "dockerd (pid $pid) does not answer; see $LOG"
fi
rm -f "$PIDFILE"

# Flag sets to try, in order. Plain dockerd works in the reference sandbox
# (overlay2 on ext4, iptables-nft); the fallbacks cover kernels without
# iptables NAT support or without overlayfs. Published ports on 127.0.0.1
# keep working with --iptables=false thanks to docker-proxy (userland proxy).
if [[ -n ${ENSSIB_DOCKERD_FLAGS+x} ]]; then
  attempts=("$ENSSIB_DOCKERD_FLAGS")
else
  attempts=("" "--iptables=false --ip-masq=false" "--iptables=false --ip-masq=false --storage-driver=vfs")
fi

mkdir -p "$(dirname "$LOG")"
for flags in "${attempts[@]}"; do
  log "starting $DOCKERD ${flags:-(no extra flags)}; log: $LOG"
  printf '\n==== %s enssib ensure-docker: %s %s\n' "$(date -Is)" "$DOCKERD" "$flags" >>"$LOG"
  # setsid + nohup: the engine outlives this script and its terminal.
  # shellcheck disable=SC2086
  setsid nohup "$DOCKERD" $flags </dev/null >>"$LOG" 2>&1 &
  pid=$!
  if wait_for "$pid"; then
    log "Docker engine is up (dockerd pid $pid)"
    exit 0
  else
    rc=$?
  fi
  if ((rc == 2)); then
    die "dockerd (pid $pid) did not answer within ${TIMEOUT}s; see $LOG"
  fi
  log "dockerd exited during start-up; last log lines:"
  tail -n 5 "$LOG" >&2 || true
  rm -f "$PIDFILE"
done
die "could not start dockerd; see $LOG"
