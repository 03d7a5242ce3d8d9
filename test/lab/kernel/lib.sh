# enssib kernel lab — shared helpers for up.sh, down.sh and smoke.sh (sourced, not run).
# shellcheck shell=bash

KLAB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KLAB_VMS=(data1 data2 node01)
STATE=${ENSSIB_LAB_STATE:-/tmp/enssib-lab-kernel}

# name → cluster address, cluster MAC, data disk (yes/no)
vm_addr() { case "$1" in data1) echo 10.66.6.1 ;; data2) echo 10.66.6.2 ;; node01) echo 10.66.6.11 ;; esac; }
vm_index() { case "$1" in data1) echo 01 ;; data2) echo 02 ;; node01) echo 11 ;; esac; }
vm_has_data_disk() { case "$1" in data1|data2) return 0 ;; *) return 1 ;; esac; }

klab_log() { printf '%s [kernel-lab] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
klab_die() { klab_log "ERROR: $*"; exit 1; }

# Parse the common [--state DIR] option; other arguments are an error.
klab_parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --state) [ $# -ge 2 ] || klab_die "--state needs a directory"; STATE=$2; shift ;;
            --state=*) STATE=${1#*=} ;;
            -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
            *) klab_die "unknown argument: $1" ;;
        esac
        shift
    done
    case "$STATE" in /*) ;; *) STATE="$(pwd)/$STATE" ;; esac
    STATE=${STATE%/}
    [ "$STATE" != "" ] && [ "$STATE" != "/" ] || klab_die "refusing state dir '/'"
}

# pid of a VM's qemu if it is running, else nothing (and status 1).
vm_pid() {
    local pidfile="$STATE/$1.pid" pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-name $1 " || return 1
    echo "$pid"
}

# ssh to a VM through the generated config: vssh data1 cmd...
# The lab scripts share one connection per VM (ssh handshakes are slow under
# TCG); klab_ssh_close ends those masters. fd 8 (up.sh's lock) is not inherited.
vssh() {
    local host=$1; shift
    ssh -F "$STATE/ssh_config" -o ControlMaster=auto -o "ControlPath=$STATE/.cm-%n" \
        -o ControlPersist=60 "$host" "$@" 8>&-
}
klab_ssh_close() {
    local vm
    for vm in "${KLAB_VMS[@]}"; do
        [ -S "$STATE/.cm-$vm" ] && ssh -F "$STATE/ssh_config" -o "ControlPath=$STATE/.cm-%n" -O exit "$vm" >/dev/null 2>&1
    done
    return 0
}

# run a script (stdin) on a VM, its output prefixed and time-stamped:
#   remote data1 arg1 arg2 <<'EOF' ... EOF      (arguments become $1 $2 …)
remote() {
    local host=$1; shift
    vssh "$host" bash -s -- "$@" 2>&1 | while IFS= read -r line; do klab_log "  $host| $line"; done
}
