#!/usr/bin/env bash
# Undo test/lab/registry/up.sh STATE_DIR: stop its registries, remove its /etc/hosts
# line, its /etc/docker/certs.d entries, the images tagged for it in the local
# engine, the base image it imported, and STATE_DIR itself.
#
#   test/lab/registry/down.sh STATE_DIR [--keep-state]
set -uo pipefail

STATE=${1:?usage: down.sh STATE_DIR [--keep-state]}
[[ -d $STATE ]] || exit 0
STATE=$(cd "$STATE" && pwd)
[[ -f $STATE/.lab-marker ]] || { echo "down.sh: $STATE was not made by up.sh; leaving it alone" >&2; exit 1; }
MARK="# enssib-registry-lab $STATE"
ADDED=$STATE/added
[[ -f $ADDED ]] || ADDED=/dev/null
engine() { command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; }

while read -r kind what; do
  case $kind in
    registry)
      pidfile=$STATE/$what/pid
      [[ -s $pidfile ]] || continue
      pid=$(<"$pidfile")
      if [[ -d /proc/$pid ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == docker-registr* ]]; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 50); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
        [[ -d /proc/$pid ]] && kill -9 "$pid" 2>/dev/null
      fi
      ;;
    certs)
      rm -rf "/etc/docker/certs.d/$what"
      if engine; then
        docker images --format '{{.Repository}}:{{.Tag}}' | grep -F "$what/" | xargs -r docker rmi -f >/dev/null 2>&1
      fi
      ;;
    image)
      engine || continue
      base=$(docker image inspect -f '{{.Id}}' "$what" 2>/dev/null) || continue
      # Images built on it (intermediate steps of failed builds included), newest descendants first.
      docker image ls -a -q --no-trunc | sort -u | xargs -r docker image inspect -f '{{.Id}} {{.Parent}}' 2>/dev/null |
        awk -v base="$base" '{ parent[$1] = $2; ids[++n] = $1 }
          END { set[base] = 1; order[++m] = base; changed = 1
                while (changed) { changed = 0
                  for (i = 1; i <= n; i++) { id = ids[i]; if (!(id in set) && (parent[id] in set)) { set[id] = 1; order[++m] = id; changed = 1 } } }
                for (i = m; i >= 1; i--) print order[i] }' |
        xargs -r docker rmi -f >/dev/null 2>&1
      docker rmi -f "$what" >/dev/null 2>&1
      ;;
    hosts)
      if grep -qF "$MARK" /etc/hosts; then
        # /etc/hosts may be a bind mount: rewrite it in place.
        kept=$(grep -vF "$MARK" /etc/hosts)
        printf '%s\n' "$kept" >/etc/hosts
      fi
      ;;
  esac
done <"$ADDED"
rmdir /etc/docker/certs.d 2>/dev/null
: >"$STATE/added" 2>/dev/null

[[ ${2:-} == --keep-state ]] || rm -rf "$STATE"
exit 0
