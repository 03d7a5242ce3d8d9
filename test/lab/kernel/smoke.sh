#!/usr/bin/env bash
# enssib kernel lab — end-to-end smoke test with plain commands over ssh (not used by the tool).
#
# Usage: test/lab/kernel/smoke.sh [--state DIR]      (default /tmp/enssib-lab-kernel; run up.sh first)
#
# LV "smoke" on data1 (activated on data2) → LIO block backstore with the same
# wwn on both servers → iSCSI target iqn.2016-04.fr.enssib:smoke, LUN 0, one
# portal per server (demo mode) → node01 discovers and logs in to both portals
# → multipath -ll shows one map with 2 active paths → mkfs, mount, write,
# umount → the file is read back on data1 and data2 → everything is removed,
# failure or not. Prints PASS or FAIL; exit status 0 or 1.
set -euo pipefail

# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
klab_parse_args "$@"

[ -f "$STATE/ssh_config" ] || klab_die "no lab in $STATE (run up.sh first)"

IQN=iqn.2016-04.fr.enssib:smoke
LV=smoke
VG=vg_cluster
WWN=$(cat /proc/sys/kernel/random/uuid)
T0=$(date +%s)
CURRENT="start"

step() { CURRENT=$*; klab_log "== $*"; }

cleanup() {
    klab_log "== cleanup (exports, sessions, LV)"
    remote node01 "$IQN" <<'EOF' || true
iqn=$1
mountpoint -q /mnt/smoke && umount /mnt/smoke
for p in 10.66.6.1:3260 10.66.6.2:3260; do
    iscsiadm -m node -T "$iqn" -p "$p" --logout >/dev/null 2>&1 || true
    iscsiadm -m node -T "$iqn" -p "$p" -o delete >/dev/null 2>&1 || true
    iscsiadm -m discoverydb -t sendtargets -p "$p" -o delete >/dev/null 2>&1 || true
done
udevadm settle
for m in $(dmsetup ls --target multipath 2>/dev/null | awk '{ print $1 }'); do
    multipath -f "$m" >/dev/null 2>&1 || true
done
echo "sessions: $(iscsiadm -m session 2>/dev/null | wc -l), multipath maps: $(dmsetup ls --target multipath 2>/dev/null | grep -vc 'No devices' || true)"
EOF
    for host in data1 data2; do
        remote "$host" "$IQN" "$LV" <<'EOF' &
iqn=$1 lv=$2 gone=''
if [ -d "/sys/kernel/config/target/iscsi/$iqn" ]; then targetcli /iscsi delete "$iqn" >/dev/null; gone="target "; fi
if ls -d /sys/kernel/config/target/core/iblock_*/"$lv" >/dev/null 2>&1; then
    targetcli /backstores/block delete "$lv" >/dev/null; gone="${gone}backstore"
fi
echo "exports removed: ${gone:-none}"
EOF
    done
    wait
    remote data2 "$VG/$LV" <<'EOF' || true
if lvs "$1" >/dev/null 2>&1; then lvchange -an "$1" && echo "LV deactivated"; else echo "no LV"; fi
EOF
    remote data1 "$VG/$LV" <<'EOF' || true
if lvs "$1" >/dev/null 2>&1; then lvremove -q -y "$1"; else echo "no LV"; fi
EOF
    remote data2 "$VG/$LV" <<'EOF' || true
vgscan >/dev/null 2>&1
if lvs "$1" >/dev/null 2>&1; then echo "still sees $1"; else echo "does not see $1"; fi
EOF
}

finish() {
    local rc=$?
    trap - EXIT
    cleanup
    klab_ssh_close
    if [ $rc -eq 0 ]; then
        klab_log "PASS: kernel lab smoke test ($(( $(date +%s) - T0 )) s)"
        echo PASS
    else
        klab_log "FAIL: at step \"$CURRENT\" ($(( $(date +%s) - T0 )) s)"
        echo FAIL
    fi
    exit $rc
}
trap finish EXIT

for vm in "${KLAB_VMS[@]}"; do vssh "$vm" true || { CURRENT="ssh $vm"; false; }; done

step "leftovers of an earlier run"
cleanup

step "lvcreate $VG/$LV on data1, activate on data2"
remote data1 "$VG" "$LV" <<'EOF'
set -euo pipefail
lvcreate -q -y -W y -n "$2" -L 256M "$1"
lvs --noheadings -o lv_name,lv_size,lv_attr "$1/$2"
EOF
remote data2 "$VG/$LV" <<'EOF'
set -euo pipefail
vgscan >/dev/null
lvchange -ay "$1"
lvs --noheadings -o lv_name,lv_size,lv_attr "$1"
EOF

step "LIO export on data1 and data2, same wwn $WWN"
for host in data1 data2; do
    remote "$host" "$IQN" "$LV" "/dev/$VG/$LV" "$WWN" "$(vm_addr "$host")" <<'EOF' &
set -euo pipefail
iqn=$1 lv=$2 dev=$3 wwn=$4 addr=$5
targetcli /backstores/block create name="$lv" dev="$dev" wwn="$wwn" >/dev/null
targetcli /iscsi create "$iqn" >/dev/null
targetcli "/iscsi/$iqn/tpg1/luns" create "/backstores/block/$lv" lun=0 >/dev/null
if targetcli ls "/iscsi/$iqn/tpg1/portals/0.0.0.0:3260" >/dev/null 2>&1; then
    targetcli "/iscsi/$iqn/tpg1/portals" delete 0.0.0.0 3260 >/dev/null
fi
targetcli "/iscsi/$iqn/tpg1/portals" create "$addr" 3260 >/dev/null
targetcli "/iscsi/$iqn/tpg1" set attribute generate_node_acls=1 cache_dynamic_acls=1 demo_mode_write_protect=0 authentication=0 >/dev/null
echo "serial $(cat /sys/kernel/config/target/core/iblock_*/$lv/wwn/vpd_unit_serial | sed 's/.*: //'), portal $(ls /sys/kernel/config/target/iscsi/$iqn/tpgt_1/np/)"
EOF
done
fails=0
for job in $(jobs -p); do wait "$job" || fails=$((fails + 1)); done
[ $fails -eq 0 ]

step "node01: discovery and login on both portals, one multipath map with 2 active paths"
remote node01 "$IQN" <<'EOF'
set -euo pipefail
iqn=$1
for p in 10.66.6.1:3260 10.66.6.2:3260; do
    iscsiadm -m discovery -t sendtargets -p "$p"
    iscsiadm -m node -T "$iqn" -p "$p" --login
done
iscsiadm -m session
for i in $(seq 1 30); do
    udevadm settle
    maps=$(multipath -ll 2>/dev/null | grep -cE '^[0-9a-f]+ dm-[0-9]+ LIO-ORG' || true)
    paths=$(multipath -ll 2>/dev/null | grep -c 'active ready running' || true)
    [ "$maps" = 1 ] && [ "$paths" = 2 ] && break
    sleep 1
done
multipath -ll
[ "$maps" = 1 ] || { echo "expected 1 multipath map, found $maps"; exit 1; }
[ "$paths" = 2 ] || { echo "expected 2 active paths, found $paths"; exit 1; }
wwid=$(multipath -ll | awk '/^[0-9a-f]+ dm-[0-9]+ LIO-ORG/ { print $1; exit }')
echo "map /dev/mapper/$wwid: 1 map, 2 active paths"
echo "$wwid" > /run/enssib-smoke.wwid
EOF

step "node01: mkfs, mount, write, umount through the multipath device"
remote node01 <<'EOF'
set -euo pipefail
dev=/dev/mapper/$(cat /run/enssib-smoke.wwid)
mkfs.ext4 -q -F -L smoke "$dev"
mkdir -p /mnt/smoke
mount "$dev" /mnt/smoke
echo "enssib kernel lab smoke $(date -Is)" > /mnt/smoke/smoke.txt
dd if=/dev/urandom of=/mnt/smoke/blob bs=1M count=16 status=none
sum=$(sha256sum /mnt/smoke/blob | cut -d' ' -f1)
umount /mnt/smoke
mount -o ro "$dev" /mnt/smoke
[ "$(sha256sum /mnt/smoke/blob | cut -d' ' -f1)" = "$sum" ] || { echo "checksum mismatch after remount"; exit 1; }
cat /mnt/smoke/smoke.txt
umount /mnt/smoke
echo "16 MiB written and read back, sha256 ${sum:0:16}…"
EOF
expected=$(vssh node01 'debugfs -R "cat /smoke.txt" /dev/mapper/$(cat /run/enssib-smoke.wwid) 2>/dev/null')
[ -n "$expected" ]

step "data1 and data2 both see the file on the LV (DRBD replication)"
for host in data1 data2; do
    got=$(vssh "$host" "blockdev --flushbufs /dev/$VG/$LV; debugfs -R 'cat /smoke.txt' /dev/$VG/$LV 2>/dev/null")
    [ "$got" = "$expected" ] || { klab_log "  $host| read '$got', expected '$expected'"; false; }
    klab_log "  $host| $got"
done

step "node01: logout"
remote node01 "$IQN" <<'EOF'
set -euo pipefail
for p in 10.66.6.1:3260 10.66.6.2:3260; do
    iscsiadm -m node -T "$1" -p "$p" --logout
done
rm -f /run/enssib-smoke.wwid
EOF
CURRENT="cleanup"
