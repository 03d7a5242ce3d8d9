#!/usr/bin/env bash
# enssib kernel lab — build the Debian 12 VM image (once, cached).
#
# Usage: test/lab/kernel/build-image.sh [--print-dir] [--force]
#
# Produces /var/cache/enssib-lab/kernel-<hash>/ holding:
#   base.img              raw ext4 root filesystem (mounted as /dev/vda, read-only base of the overlays)
#   vmlinuz, initrd.img   kernel and initramfs extracted from the image's /boot
#   id_ed25519[.pub]      lab ssh key; its .pub is root's authorized_keys in the image
#   ssh_host_ed25519_key.pub  the image's (only) ssh host key, for known_hosts
#   BUILD-INFO            kernel version, package list, build duration
# <hash> is the sha256 of the recipe: this script plus every file under guest/.
# The image is rebuilt only when the recipe changes (or with --force).
# With --print-dir, the cache directory is printed on stdout (logs go to stderr).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_ROOT=${ENSSIB_LAB_CACHE:-/var/cache/enssib-lab}
MIRROR=${ENSSIB_LAB_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
IMAGE_SIZE=${ENSSIB_LAB_IMAGE_SIZE:-4G}

PACKAGES=(
    systemd systemd-sysv udev dbus openssh-server
    lvm2 targetcli-fb open-iscsi multipath-tools drbd-utils
    kmod iproute2 iputils-ping procps e2fsprogs xfsprogs zstd sudo sg3-utils less
)

log() { printf '%s [kernel-lab build] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

print_dir=0 force=0
while [ $# -gt 0 ]; do
    case "$1" in
        --print-dir) print_dir=1 ;;
        --force) force=1 ;;
        -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
    shift
done

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot)"

recipe_hash() {
    (cd "$HERE" && find build-image.sh guest -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) \
        | sha256sum | cut -c1-16
}
HASH=$(recipe_hash)
OUT="$CACHE_ROOT/kernel-$HASH"

emit() { [ "$print_dir" -eq 1 ] && printf '%s\n' "$OUT"; return 0; }

if [ "$force" -eq 0 ] && [ -f "$OUT/.complete" ]; then
    log "image cached: $OUT"
    emit
    exit 0
fi

for tool in debootstrap mkfs.ext4 ssh-keygen chroot; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install -y debootstrap e2fsprogs openssh-client)"
done

mkdir -p "$CACHE_ROOT"
# One build at a time per recipe; a second caller waits, then finds the cache.
exec 9>"$CACHE_ROOT/kernel-$HASH.lock"
if ! flock -n 9; then
    log "another build of kernel-$HASH is running, waiting for it"
    flock 9
    if [ "$force" -eq 0 ] && [ -f "$OUT/.complete" ]; then
        log "image cached: $OUT"; emit; exit 0
    fi
fi

START=$(date +%s)
WORK="$CACHE_ROOT/kernel-$HASH.tmp"

# Leftovers of interrupted builds of other recipes (their lock is free).
for stale in "$CACHE_ROOT"/kernel-*.tmp; do
    [ -d "$stale" ] && [ "$stale" != "$WORK" ] || continue
    if ( flock -n 7 ) 7>"${stale%.tmp}.lock"; then
        for m in dev/pts dev proc sys; do
            mountpoint -q "$stale/rootfs/$m" 2>/dev/null && umount -l "$stale/rootfs/$m"
        done
        log "removing $stale (interrupted build)"
        rm -rf "$stale"
    fi
done
ROOT="$WORK/rootfs"

cleanup_mounts() {
    local m
    for m in dev/pts dev proc sys; do
        if mountpoint -q "$ROOT/$m" 2>/dev/null; then umount -l "$ROOT/$m" || true; fi
    done
}
on_exit() {
    local rc=$?
    cleanup_mounts
    if [ $rc -ne 0 ]; then log "build failed (exit $rc); partial work left in $WORK"; fi
}
trap on_exit EXIT

cleanup_mounts
rm -rf "$WORK"
mkdir -p "$WORK"
log "building image kernel-$HASH in $WORK (mirror $MIRROR)"

# 1. Base system ------------------------------------------------------------
log "debootstrap $SUITE (minbase + ${#PACKAGES[@]} packages)"
include=$(IFS=,; echo "${PACKAGES[*]}")
nice -n 10 debootstrap --variant=minbase --include="$include" "$SUITE" "$ROOT" "$MIRROR" \
    > "$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (see $WORK/debootstrap.log)"; }
log "debootstrap done ($(( $(date +%s) - START )) s)"

# 2. Kernel, inside the chroot ----------------------------------------------
cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts"

in_root() { LC_ALL=C DEBIAN_FRONTEND=noninteractive chroot "$ROOT" "$@"; }

log "installing linux-image-amd64 in the chroot"
{
    in_root apt-get update
    nice -n 10 chroot "$ROOT" env LC_ALL=C DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends linux-image-amd64
} > "$WORK/kernel.log" 2>&1 || { tail -n 30 "$WORK/kernel.log" >&2; die "kernel install failed (see $WORK/kernel.log)"; }
log "kernel installed ($(( $(date +%s) - START )) s)"

# 3. Lab configuration ------------------------------------------------------
log "configuring the image"
G="$HERE/guest"

# ssh: lab client key (root's authorized key) and one baked host key.
rm -f "$WORK/id_ed25519" "$WORK/id_ed25519.pub" "$WORK/ssh_host_ed25519_key" "$WORK/ssh_host_ed25519_key.pub"
ssh-keygen -q -t ed25519 -N '' -C "enssib-kernel-lab" -f "$WORK/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C "root@enssib-kernel-lab" -f "$WORK/ssh_host_ed25519_key"
rm -f "$ROOT"/etc/ssh/ssh_host_*
install -m 600 "$WORK/ssh_host_ed25519_key" "$ROOT/etc/ssh/ssh_host_ed25519_key"
install -m 644 "$WORK/ssh_host_ed25519_key.pub" "$ROOT/etc/ssh/ssh_host_ed25519_key.pub"
rm -f "$WORK/ssh_host_ed25519_key"
install -d -m 700 "$ROOT/root/.ssh"
install -m 600 "$WORK/id_ed25519.pub" "$ROOT/root/.ssh/authorized_keys"
install -m 644 "$G/sshd-enssib-lab.conf" "$ROOT/etc/ssh/sshd_config.d/enssib-lab.conf"

# Filesystems, console, hostname (the real one is set at boot from the kernel command line).
printf '/dev/vda\t/\text4\terrors=remount-ro\t0\t1\n' > "$ROOT/etc/fstab"
echo "enssib-lab" > "$ROOT/etc/hostname"
install -m 644 "$G/hosts" "$ROOT/etc/hosts"
: > "$ROOT/etc/resolv.conf"
: > "$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"
in_root passwd -d root >/dev/null   # serial console login for debugging; ssh stays key-only

# Kernel modules for device-mapper, multipath, iSCSI initiator and LIO target, DRBD.
install -m 644 "$G/modules" "$ROOT/etc/modules"

# Network: systemd-networkd, NAT NIC by DHCP, cluster NIC from the command line.
install -m 644 "$G/20-enssib-nat.network" "$ROOT/etc/systemd/network/20-enssib-nat.network"
install -m 755 "$G/enssib-lab-setup" "$ROOT/usr/local/sbin/enssib-lab-setup"
install -m 644 "$G/enssib-lab-setup.service" "$ROOT/etc/systemd/system/enssib-lab-setup.service"

# multipathd and open-iscsi.
install -m 644 "$G/multipath.conf" "$ROOT/etc/multipath.conf"
ISCSID="$ROOT/etc/iscsi/iscsid.conf"
set_iscsid() { # key value: replace the active setting, else the first commented one, else append
    local key=$1 value=$2 re
    re=$(printf '%s' "$key" | sed -e 's/\./\\./g' -e 's/\[/\\[/g' -e 's/\]/\\]/g')
    if grep -Eq "^[[:space:]]*${re}[[:space:]]*=" "$ISCSID"; then
        sed -Ei "s|^[[:space:]]*${re}[[:space:]]*=.*|$key = $value|" "$ISCSID"
    elif grep -Eq "^#[[:space:]]*${re}[[:space:]]*=" "$ISCSID"; then
        sed -Ei "0,/^#[[:space:]]*${re}[[:space:]]*=/s|^#[[:space:]]*${re}[[:space:]]*=.*|$key = $value|" "$ISCSID"
    else
        echo "$key = $value" >> "$ISCSID"
    fi
}
set_iscsid node.startup manual
set_iscsid node.session.timeo.replacement_timeout 5
set_iscsid node.conn[0].timeo.login_timeout 5
set_iscsid node.conn[0].timeo.logout_timeout 5
set_iscsid node.conn[0].timeo.noop_out_interval 2
set_iscsid node.conn[0].timeo.noop_out_timeout 2
set_iscsid node.session.initial_login_retry_max 2
echo "InitiatorName=iqn.2016-04.fr.enssib:unset" > "$ROOT/etc/iscsi/initiatorname.iscsi"

# Services: enable what the lab needs, keep boot short, let up.sh drive DRBD.
in_root systemctl enable enssib-lab-setup.service systemd-networkd.service ssh.service \
    iscsid.socket iscsid.service multipathd.service >> "$WORK/config.log" 2>&1 \
    || { cat "$WORK/config.log" >&2; die "systemctl enable failed"; }
in_root systemctl disable drbd.service >> "$WORK/config.log" 2>&1 || true
in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
    systemd-networkd-wait-online.service >> "$WORK/config.log" 2>&1 || true

in_root apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT/usr/sbin/policy-rc.d"
KVER=$(ls "$ROOT/lib/modules" | sort -V | tail -n 1)
in_root dpkg-query -W -f '${Package} ${Version}\n' > "$WORK/packages.txt"
cleanup_mounts

# 4. Kernel + initrd out, rootfs into a raw ext4 image (nothing is mounted) ---
cp "$ROOT/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
cp "$ROOT/boot/initrd.img-$KVER" "$WORK/initrd.img"
log "making base.img ($IMAGE_SIZE ext4, kernel $KVER)"
rm -f "$WORK/base.img"
truncate -s "$IMAGE_SIZE" "$WORK/base.img"
mkfs.ext4 -q -F -L enssib-root -d "$ROOT" "$WORK/base.img" > "$WORK/mkfs.log" 2>&1 \
    || { cat "$WORK/mkfs.log" >&2; die "mkfs.ext4 -d failed"; }
chmod 444 "$WORK/base.img"
rm -rf "$ROOT"

END=$(date +%s)
{
    echo "recipe:   $HASH"
    echo "built:    $(date -Is)"
    echo "duration: $(( END - START )) s"
    echo "kernel:   $KVER"
    echo "mirror:   $MIRROR $SUITE"
    echo "packages: ${PACKAGES[*]} linux-image-amd64"
    for p in drbd-utils lvm2 targetcli-fb open-iscsi multipath-tools systemd; do
        grep "^$p " "$WORK/packages.txt" | sed 's/^/          /'
    done
} > "$WORK/BUILD-INFO"
touch "$WORK/.complete"

rm -rf "$OUT"
mv "$WORK" "$OUT"
log "image ready in $(( END - START )) s: $OUT"

# Images of older recipes: remove those no running VM uses and no build holds
# (ENSSIB_LAB_KEEP_OLD=1 keeps them). A stopped lab still pointing at one gets
# a clear message from up.sh: run down.sh, then up.sh.
if [ "${ENSSIB_LAB_KEEP_OLD:-0}" != 1 ]; then
    for old in "$CACHE_ROOT"/kernel-*; do
        [ -d "$old" ] && [ "$old" != "$OUT" ] && [ -f "$old/.complete" ] || continue
        if grep -qsF "$old/" /proc/[0-9]*/cmdline; then
            log "keeping $old (a running VM uses it)"
            continue
        fi
        if ( flock -n 7 ) 7>"$old.lock"; then
            log "removing $old (older recipe)"
            rm -rf "$old" "$old.lock"
        fi
    done
fi
emit
