#!/usr/bin/env bash
# enssib kernel lab — start data1, data2 and node01 as QEMU VMs and set up DRBD + LVM.
#
# Usage: test/lab/kernel/up.sh [--state DIR]      (default /tmp/enssib-lab-kernel)
#
# Builds (or reuses) the cached image, boots the three VMs (reusing any that
# already run from DIR), waits for ssh, then configures: DRBD r0 dual-primary
# on data1/data2's second disk, the LVM filter, and vg_cluster on /dev/drbd0.
# Writes DIR/ssh_config, DIR/known_hosts and DIR/inventory.yaml.
# Safe to run again: everything is checked before it is changed.
# Environment: ENSSIB_LAB_ACCEL (default tcg), ENSSIB_LAB_TB_SIZE (TCG
# translation cache MiB, default 256), ENSSIB_LAB_SSH_PORT (first port tried,
# default 22601), ENSSIB_LAB_MEM (MiB per VM, default 1024),
# ENSSIB_LAB_DATA_SIZE (data disk, default 2G), ENSSIB_LAB_SSH_TIMEOUT (240).
set -euo pipefail

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
klab_parse_args "$@"
trap klab_ssh_close EXIT

ACCEL=${ENSSIB_LAB_ACCEL:-tcg}
# TCG's translation cache defaults to 1 GiB per VM; 256 MiB is plenty here.
[ "$ACCEL" = tcg ] && ACCEL="tcg,tb-size=${ENSSIB_LAB_TB_SIZE:-256}"
MEM=${ENSSIB_LAB_MEM:-1024}
DATA_SIZE=${ENSSIB_LAB_DATA_SIZE:-2G}
SSH_WAIT=${ENSSIB_LAB_SSH_TIMEOUT:-240}
T0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - T0 )) s"; }

[ "$(id -u)" -eq 0 ] || klab_die "must run as root (routes, image cache)"
for tool in qemu-system-x86_64 qemu-img ssh ssh-keygen ip ss flock; do
    command -v "$tool" >/dev/null || klab_die "missing $tool (apt-get install -y qemu-system-x86 qemu-utils openssh-client iproute2)"
done

# --- host safety: the site networks exist only inside the VMs --------------
# Blackhole them (high metric, so a local bridge that owns one of these
# prefixes keeps working) and make loopback carry the VMs' multicast segment.
for net in 10.66.6.0/24 10.100.0.0/16 10.101.0.0/23 192.168.66.0/26; do
    ip route replace blackhole "$net" metric 4242
done
ip link set lo multicast on
klab_log "host: blackhole routes for the site networks, multicast on lo"

# --- image -----------------------------------------------------------------
IMG=$("$KLAB_HERE/build-image.sh" --print-dir)
mkdir -p "$STATE"
exec 8>"$STATE/.up.lock"
flock -n 8 || klab_die "another up.sh is running on $STATE"

if [ -f "$STATE/image" ]; then
    used=$(cat "$STATE/image")
    if [ "$used" != "$IMG" ]; then
        klab_log "note: $STATE was created from $used; the current recipe builds $IMG"
        klab_log "      (run down.sh first to start over on the new image)"
        [ -f "$used/.complete" ] || klab_die "$used is gone: run down.sh --state $STATE, then up.sh"
        IMG=$used
    fi
else
    echo "$IMG" > "$STATE/image"
fi
klab_log "image: $IMG ($(sed -n 's/^kernel: *//p' "$IMG/BUILD-INFO"))"

# --- ports -----------------------------------------------------------------
port_free() { ! ss -Htln "sport = :$1" | grep -q .; }
if [ ! -f "$STATE/ports" ]; then
    p=${ENSSIB_LAB_SSH_PORT:-22601}
    : > "$STATE/ports.tmp"
    for vm in "${KLAB_VMS[@]}"; do
        while ! port_free "$p"; do p=$((p + 1)); done
        echo "$vm $p" >> "$STATE/ports.tmp"
        p=$((p + 1))
    done
    # the cluster segment: one multicast group:port per state dir
    echo "mcast 230.0.0.1:$(( 20000 + $(printf '%s' "$STATE" | cksum | cut -d' ' -f1) % 10000 ))" >> "$STATE/ports.tmp"
    mv "$STATE/ports.tmp" "$STATE/ports"
fi
port_of() { awk -v h="$1" '$1 == h { print $2 }' "$STATE/ports"; }
MCAST=$(port_of mcast)

# --- VMs -------------------------------------------------------------------
start_vm() {
    local vm=$1 idx port addr pid
    idx=$(vm_index "$vm"); port=$(port_of "$vm"); addr=$(vm_addr "$vm")
    if pid=$(vm_pid "$vm"); then
        klab_log "$vm: already running (pid $pid, ssh 127.0.0.1:$port)"
        return 0
    fi
    [ -f "$STATE/$vm.qcow2" ] || qemu-img create -q -f qcow2 -b "$IMG/base.img" -F raw "$STATE/$vm.qcow2"
    local disks=(-drive "file=$STATE/$vm.qcow2,format=qcow2,if=virtio")
    if vm_has_data_disk "$vm"; then
        [ -f "$STATE/$vm-data.raw" ] || truncate -s "$DATA_SIZE" "$STATE/$vm-data.raw"
        disks+=(-drive "file=$STATE/$vm-data.raw,format=raw,if=virtio,cache=writeback")
    fi
    port_free "$port" || klab_die "$vm: port $port is taken by another process (see ss -tlnp)"
    rm -f "$STATE/$vm.monitor" "$STATE/$vm.qmp"
    # The VM inherits no open file but the standard three: neither the up.sh lock (fd 8) nor a lock a caller
    # holds (`flock FILE cmd` hands its locked fd down; a VM would keep it locked for as long as it runs).
    (
    for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-"; fi
    done
    exec qemu-system-x86_64 \
        -name "$vm" -machine pc -accel "$ACCEL" -smp 1 -m "$MEM" \
        -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 net.ifnames=0 enssib.host=$vm enssib.addr=$addr/24 enssib.mtu=9000 enssib.mac=52:54:00:66:06:$idx" \
        "${disks[@]}" \
        -netdev "user,id=nat,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22" \
        -device "virtio-net-pci,netdev=nat,mac=52:54:00:00:00:$idx,addr=0x3" \
        -netdev "socket,id=cluster,mcast=$MCAST,localaddr=127.0.0.1" \
        -device "virtio-net-pci,netdev=cluster,mac=52:54:00:66:06:$idx,addr=0x4" \
        -device virtio-rng-pci \
        -display none -serial "file:$STATE/$vm.serial.log" \
        -monitor "unix:$STATE/$vm.monitor,server,nowait" \
        -qmp "unix:$STATE/$vm.qmp,server,nowait" \
        -pidfile "$STATE/$vm.pid" -daemonize
    )
    klab_log "$vm: started (pid $(cat "$STATE/$vm.pid"), ssh 127.0.0.1:$port, serial $STATE/$vm.serial.log)"
}
for vm in "${KLAB_VMS[@]}"; do start_vm "$vm"; done
T_BOOT=$(date +%s)

# --- ssh config, known_hosts, inventory -----------------------------------
hostkey=$(awk '{ print $1, $2 }' "$IMG/ssh_host_ed25519_key.pub")
{
    echo "# Generated by test/lab/kernel/up.sh — the kernel lab (QEMU VMs)."
    for vm in "${KLAB_VMS[@]}"; do
        cat <<EOF

Host $vm
    HostName 127.0.0.1
    Port $(port_of "$vm")
    User root
    IdentityFile $IMG/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $STATE/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 10
    ServerAliveInterval 5
    ServerAliveCountMax 3
    LogLevel ERROR
EOF
    done
} > "$STATE/ssh_config.tmp"
mv "$STATE/ssh_config.tmp" "$STATE/ssh_config"
for vm in "${KLAB_VMS[@]}"; do echo "[127.0.0.1]:$(port_of "$vm") $hostkey"; done > "$STATE/known_hosts.tmp"
mv "$STATE/known_hosts.tmp" "$STATE/known_hosts"

cat > "$STATE/inventory.yaml.tmp" <<EOF
# Generated by test/lab/kernel/up.sh — the kernel lab (QEMU VMs).
site: enssib-kernel-lab
ssh: { config: $STATE/ssh_config, knownHosts: $STATE/known_hosts, connectTimeout: 10 }
networks:
  pods: 10.100.0.0/16
  services: 10.101.0.0/23
  cluster: { cidr: 10.66.6.0/24, mtu: 9000 }
  users: 192.168.66.0/26
hosts:
  - { name: data1, address: 10.66.6.1, roles: [master, storage], ssh: { host: data1 } }
  - { name: data2, address: 10.66.6.2, roles: [master, storage], ssh: { host: data2 } }
  - { name: node01, address: 10.66.6.11, roles: [worker], podSubnet: 10.100.1.0/24, ssh: { host: node01 } }
registry: { host: registry.cluster.enssib.fr:5000, ca: certs/enssib-ca.crt }
kubernetes: { api: https://api.cluster.enssib.fr:6443 }
storage: { volumeGroup: vg_cluster, drbdResource: r0, metadataHost: data1, iqnPrefix: iqn.2016-04.fr.enssib, portals: [10.66.6.1:3260, 10.66.6.2:3260], targetDriver: lio }
nfs: { vip: 10.66.6.10 }
keepalivedVip: { configMap: vip-configmap, namespace: kube-system }
backup: { destination: /srv/backup, retention: { daily: 7, weekly: 4 } }
journal: $STATE/journal.jsonl
EOF
mv "$STATE/inventory.yaml.tmp" "$STATE/inventory.yaml"
klab_log "wrote $STATE/ssh_config, known_hosts, inventory.yaml"

# --- wait for ssh -----------------------------------------------------------
klab_log "waiting for ssh on ${KLAB_VMS[*]} (timeout ${SSH_WAIT} s)"
waiting=("${KLAB_VMS[@]}")
deadline=$(( $(date +%s) + SSH_WAIT ))
last_report=0
while [ ${#waiting[@]} -gt 0 ]; do
    still=()
    for vm in "${waiting[@]}"; do
        vm_pid "$vm" >/dev/null || { tail -n 20 "$STATE/$vm.serial.log" >&2 || true; klab_die "$vm: qemu exited"; }
        if vssh "$vm" -o ConnectTimeout=5 true 2>/dev/null; then
            klab_log "$vm: ssh is up ($(( $(date +%s) - T_BOOT )) s after start)"
        else
            still+=("$vm")
        fi
    done
    waiting=("${still[@]+"${still[@]}"}")
    [ ${#waiting[@]} -eq 0 ] && break
    now=$(date +%s)
    if [ "$now" -ge "$deadline" ]; then
        for vm in "${waiting[@]}"; do
            klab_log "$vm: last serial lines:"; tail -n 15 "$STATE/$vm.serial.log" >&2 || true
        done
        klab_die "ssh not up after ${SSH_WAIT} s on: ${waiting[*]}"
    fi
    if [ $(( now - last_report )) -ge 15 ]; then
        klab_log "  still waiting for: ${waiting[*]} ($(( now - T_BOOT )) s)"
        last_report=$now
    fi
    sleep 3
done

# --- cluster network --------------------------------------------------------
for vm in "${KLAB_VMS[@]}"; do
    remote "$vm" "$(vm_addr "$vm")" <<'EOF' || klab_die "$vm: cluster network check failed"
set -euo pipefail
want=$1
dev=$(ip -o -4 addr show | awk -v a="$want" '$4 ~ "^"a"/" { print $2; exit }')
for i in $(seq 1 20); do [ -n "$dev" ] && break; sleep 1; dev=$(ip -o -4 addr show | awk -v a="$want" '$4 ~ "^"a"/" { print $2; exit }'); done
[ -n "$dev" ] || { echo "no interface carries $want" >&2; ip -br addr >&2; exit 1; }
mtu=$(cat /sys/class/net/$dev/mtu)
echo "$want on $dev, mtu $mtu, $(cat /etc/iscsi/initiatorname.iscsi)"
EOF
done
for pair in "data1 10.66.6.2" "data2 10.66.6.11" "node01 10.66.6.1"; do
    read -r from to <<< "$pair"
    ok=0
    for _ in $(seq 1 15); do
        if vssh "$from" ping -c1 -W1 -M 'do' -s 8972 "$to" >/dev/null 2>&1; then ok=1; break; fi
        sleep 1
    done
    [ $ok -eq 1 ] || klab_die "$from cannot reach $to on the cluster segment with 9000-byte frames"
done
klab_log "cluster segment: 10.66.6.1/.2/.11 reach each other with MTU 9000"

# --- DRBD r0, dual-primary ---------------------------------------------------
DRBD_RES=$(cat <<'EOF'
# Written by test/lab/kernel/up.sh (DRBD 8.4 syntax: the Debian kernel ships drbd 8.4).
resource r0 {
    protocol C;
    device    /dev/drbd0;
    disk      /dev/vdb;
    meta-disk internal;
    startup {
        wfc-timeout 15;
        degr-wfc-timeout 15;
    }
    net {
        allow-two-primaries yes;
        after-sb-0pri discard-zero-changes;
        after-sb-1pri discard-secondary;
        after-sb-2pri disconnect;
    }
    on data1 { address 10.66.6.1:7789; }
    on data2 { address 10.66.6.2:7789; }
}
EOF
)
drbd_prepare() { # write r0.res, create metadata once, bring the resource up
    remote "$1" <<EOF
set -euo pipefail
cat > /etc/drbd.d/r0.res.tmp <<'RES'
$DRBD_RES
RES
mv /etc/drbd.d/r0.res.tmp /etc/drbd.d/r0.res
sed -i 's/^\([[:space:]]*usage-count\).*/\1 no;/' /etc/drbd.d/global_common.conf
drbdadm sh-nop >/dev/null
if ! drbdadm role r0 >/dev/null 2>&1; then
    if ! drbdadm -- --force dump-md r0 >/dev/null 2>&1; then
        echo "creating DRBD metadata on /dev/vdb"
        drbdadm -- --force create-md r0
    fi
fi
drbdadm adjust r0
echo "r0 \$(drbdadm role r0) \$(drbdadm cstate r0) \$(drbdadm dstate r0)"
EOF
}
drbd_prepare data1 & p1=$!
drbd_prepare data2 & p2=$!
wait $p1 || klab_die "data1: DRBD setup failed"
wait $p2 || klab_die "data2: DRBD setup failed"

wait_remote() { # host timeout description command...
    local host=$1 timeout=$2 what=$3; shift 3
    local end=$(( $(date +%s) + timeout ))
    until vssh "$host" "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 2
    done
    klab_log "$host: $what"
}
wait_remote data1 60 "r0 Connected" '[ "$(drbdadm cstate r0)" = Connected ]' \
    || klab_die "DRBD r0 did not connect: $(vssh data1 cat /proc/drbd)"

dstate=$(vssh data1 drbdadm dstate r0)
if [ "$dstate" = "Inconsistent/Inconsistent" ]; then
    klab_log "data1: new DRBD device, skipping the initial sync (--clear-bitmap new-current-uuid)"
    vssh data1 drbdadm -- --clear-bitmap new-current-uuid r0
fi
wait_remote data1 120 "r0 UpToDate/UpToDate" '[ "$(drbdadm dstate r0)" = UpToDate/UpToDate ]' \
    || klab_die "DRBD r0 not UpToDate/UpToDate: $(vssh data1 cat /proc/drbd)"
for vm in data1 data2; do
    vssh "$vm" '[ "$(drbdadm role r0 | cut -d/ -f1)" = Primary ] || drbdadm primary r0'
done
for vm in data1 data2; do
    state=$(vssh "$vm" 'echo "$(drbdadm role r0) $(drbdadm cstate r0) $(drbdadm dstate r0)"')
    [ "$state" = "Primary/Primary Connected UpToDate/UpToDate" ] || klab_die "$vm: DRBD r0 is '$state'"
    klab_log "$vm: r0 $state"
done

# --- LVM on /dev/drbd0 ---------------------------------------------------------
lvm_filter() {
    remote "$1" <<'EOF'
set -euo pipefail
f=/etc/lvm/lvm.conf
line='	global_filter = [ "a|^/dev/drbd[0-9]+$|", "r|.*|" ]   # enssib-lab: LVM only on DRBD, never on its backing disk'
if ! grep -qF "$line" "$f"; then
    sed -i '/# enssib-lab: /d' "$f"
    awk -v l="$line" '{ print } !done && /^devices {/ { print l; done = 1 }' "$f" > "$f.tmp"
    mv "$f.tmp" "$f"
fi
echo "$(lvmconfig devices/global_filter)"
EOF
}
lvm_filter data1
lvm_filter data2

remote data1 <<'EOF' || klab_die "data1: vg_cluster setup failed"
set -euo pipefail
if vgs vg_cluster >/dev/null 2>&1; then
    echo "vg_cluster exists"
else
    pvs /dev/drbd0 >/dev/null 2>&1 || pvcreate -q -y /dev/drbd0
    vgcreate -q vg_cluster /dev/drbd0
    echo "created vg_cluster on /dev/drbd0"
fi
EOF
vssh data2 'vgscan >/dev/null 2>&1; vgs vg_cluster >/dev/null' || klab_die "data2 does not see vg_cluster after vgscan"
for vm in data1 data2; do
    klab_log "$vm: $(vssh "$vm" vgs --noheadings -o vg_name,pv_count,vg_size,vg_free vg_cluster | xargs)"
done

klab_log "kernel lab ready in $(elapsed)"
cat >&2 <<EOF

  ssh:        ssh -F $STATE/ssh_config data1     (data2, node01)
  inventory:  $STATE/inventory.yaml
  serial:     $STATE/<vm>.serial.log    monitor: socat - UNIX-CONNECT:$STATE/<vm>.monitor
  stop:       $KLAB_HERE/down.sh --state $STATE

EOF
