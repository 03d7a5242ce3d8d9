#!/usr/bin/env bash
# enssib kernel lab — stop the VMs and remove the state directory (the image cache stays).
#
# Usage: test/lab/kernel/down.sh [--state DIR]      (default /tmp/enssib-lab-kernel)
#
# Each qemu is stopped by the pid in its pidfile (SIGTERM, then SIGKILL after
# 10 s); nothing else is touched. The blackhole routes stay (harmless).
set -euo pipefail

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
klab_parse_args "$@"

if [ ! -d "$STATE" ]; then
    klab_log "nothing to do: $STATE does not exist"
    exit 0
fi
[ -f "$STATE/ports" ] || [ -f "$STATE/image" ] || ls "$STATE"/*.pid >/dev/null 2>&1 \
    || klab_die "$STATE does not look like a kernel lab state dir (no ports/image/pidfiles); not removing it"

klab_ssh_close
pids=()
for vm in "${KLAB_VMS[@]}"; do
    if pid=$(vm_pid "$vm"); then
        klab_log "$vm: stopping qemu (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid")
    elif [ -f "$STATE/$vm.pid" ]; then
        klab_log "$vm: not running (stale pidfile)"
    fi
done
for pid in "${pids[@]+"${pids[@]}"}"; do
    for _ in $(seq 1 20); do [ -d "/proc/$pid" ] || break; sleep 0.5; done
    if [ -d "/proc/$pid" ]; then
        klab_log "pid $pid still alive after 10 s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
done

rm -rf "$STATE"
klab_log "removed $STATE (image cache kept in ${ENSSIB_LAB_CACHE:-/var/cache/enssib-lab})"
