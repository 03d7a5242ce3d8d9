#!/usr/bin/env bash
# Stop the hosts lab: remove its containers (label enssib-lab=hosts) and its
# state dir. The image and the cached rootfs tarball are kept. Idempotent.
#
#   test/lab/hosts/down.sh [--state DIR]     (default /tmp/enssib-lab-hosts)
set -euo pipefail

log() { printf 'down: %s\n' "$*" >&2; }
die() { printf 'down: ERROR: %s\n' "$*" >&2; exit 1; }

STATE=/tmp/enssib-lab-hosts
while (($#)); do
  case $1 in
  --state) STATE=${2:?--state needs a directory}; shift 2 ;;
  --state=*) STATE=${1#*=}; shift ;;
  -h | --help) sed -n '2,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
  *) die "unknown argument: $1" ;;
  esac
done
[[ $STATE == /* ]] || STATE="$PWD/$STATE"

exec 8>/run/enssib-lab-hosts.lock
flock -w 300 8 || die "another up.sh/down.sh holds /run/enssib-lab-hosts.lock"

if timeout 10 docker info >/dev/null 2>&1; then
  mapfile -t ids < <(docker ps -aq --filter label=enssib-lab=hosts)
  if ((${#ids[@]})); then
    # Paused containers cannot be killed until they are thawed.
    mapfile -t paused < <(docker ps -q --filter label=enssib-lab=hosts --filter status=paused)
    ((${#paused[@]} == 0)) || docker unpause "${paused[@]}" >/dev/null || true
    docker rm -f "${ids[@]}" >/dev/null
    log "removed ${#ids[@]} lab container(s)"
  else
    log "no lab containers"
  fi
else
  log "warning: the Docker engine does not answer; no containers removed"
fi

if [[ -d $STATE ]]; then
  if [[ -e $STATE/.enssib-lab-hosts ]]; then
    rm -rf --one-file-system "${STATE:?}"
    log "removed $STATE"
  else
    die "$STATE is not a hosts-lab state dir (no .enssib-lab-hosts marker); not removing it"
  fi
fi
