#!/usr/bin/env bash
# enssib kernel lab — the lab's signed apt repository (built once, cached).
#
# Usage: test/lab/kernel/apt-repo.sh [--image DIR] [--print-dir] [--force]
#
# The VMs have no route out, hence no Debian mirror: what a test installs in
# them comes from this one repository, served from the host over loopback and
# an ssh reverse forward (see test/integration/kernel/lab.ts, serveAptRepo).
# Produces /var/cache/enssib-lab/apt-<hash>/ holding:
#   repo/        a flat repository (suite "/", the layout of pkgs.k8s.io):
#                Packages, Packages.gz, Release, InRelease, Release.gpg, the .debs
#   key.gpg      the lab's public signing key (binary keyring, for signed-by)
#   BUILD-INFO   what is in it and why
# Content:
#   - Debian's own containerd, runc, nfs-common and netbase, and every
#     dependency the kernel image lacks: `apt-get install --simulate` against
#     the image's dpkg status (read from base.img with debugfs), resolved and
#     downloaded on the host with a private apt configuration and Debian's mirror;
#   - STAND-IN kubeadm, kubelet and kubectl (standin/: shell scripts that record
#     their arguments; Kubernetes binaries are not available here).
# <hash>: the sha256 of this script, standin/ and the image directory's name
# (the image recipe: another image may lack other dependencies).
# The signing key is made once in /var/cache/enssib-lab/apt-key/ and kept.
# --image: the kernel image directory (default: build-image.sh --print-dir).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_ROOT=${ENSSIB_LAB_CACHE:-/var/cache/enssib-lab}
MIRROR=${ENSSIB_LAB_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
# What `enssib node bootstrap` installs from Debian (open-iscsi and
# multipath-tools are in the image already; apt finds them installed).
DEBIAN_PACKAGES=(containerd runc nfs-common netbase)
STANDIN_VERSION=1.30.4-1.1

log() { printf '%s [kernel-lab apt] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

print_dir=0 force=0 image=''
while [ $# -gt 0 ]; do
    case "$1" in
        --print-dir) print_dir=1 ;;
        --force) force=1 ;;
        --image) [ $# -ge 2 ] || die "--image needs a directory"; image=$2; shift ;;
        -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
    shift
done

[ "$(id -u)" -eq 0 ] || die "must run as root (the cache in $CACHE_ROOT)"
[ -n "$image" ] || image=$("$HERE/build-image.sh" --print-dir)
[ -f "$image/.complete" ] || die "no complete kernel image in $image"

HASH=$( { (cd "$HERE" && find apt-repo.sh standin -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); basename "$image"; } \
    | sha256sum | cut -c1-16)
OUT="$CACHE_ROOT/apt-$HASH"
emit() { [ "$print_dir" -eq 1 ] && printf '%s\n' "$OUT"; return 0; }

if [ "$force" -eq 0 ] && [ -f "$OUT/.complete" ]; then
    log "apt repository cached: $OUT"
    emit
    exit 0
fi
for tool in apt-get dpkg-deb dpkg-scanpackages gpg debugfs gzip; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install -y apt dpkg-dev gnupg e2fsprogs)"
done

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/apt-$HASH.lock"
if ! flock -n 9; then
    log "another build of apt-$HASH is running, waiting for it"
    flock 9
    if [ "$force" -eq 0 ] && [ -f "$OUT/.complete" ]; then log "apt repository cached: $OUT"; emit; exit 0; fi
fi
START=$(date +%s)
WORK="$CACHE_ROOT/apt-$HASH.tmp"
rm -rf "$WORK"
mkdir -p "$WORK/repo" "$WORK/apt/empty" "$WORK/apt/state/lists/partial" "$WORK/apt/cache/archives/partial"

# --- the lab's signing key (once) ---------------------------------------------
KEYDIR="$CACHE_ROOT/apt-key"
export GNUPGHOME="$KEYDIR/gnupg"
stop_agent() { gpgconf --kill gpg-agent >/dev/null 2>&1 || true; }
trap stop_agent EXIT
(
    flock 7
    if [ ! -f "$KEYDIR/fingerprint" ]; then
        rm -rf "$GNUPGHOME"; install -d -m 700 "$GNUPGHOME"
        gpg --batch --quiet --passphrase '' --quick-gen-key "enssib kernel lab apt repository <apt@lab.enssib.invalid>" ed25519 sign never
        gpg --batch --quiet --with-colons --list-secret-keys | awk -F: '$1 == "fpr" { print $10; exit }' > "$KEYDIR/fingerprint.tmp"
        mv "$KEYDIR/fingerprint.tmp" "$KEYDIR/fingerprint"
        log "made the lab's signing key $(cat "$KEYDIR/fingerprint")"
    fi
) 7>"$CACHE_ROOT/apt-key.lock"
FPR=$(cat "$KEYDIR/fingerprint")
gpg --batch --export "$FPR" > "$WORK/key.gpg"

# --- Debian packages the image lacks ------------------------------------------
# A private apt configuration (APT_CONFIG is read before /etc/apt/apt.conf.d,
# which it points elsewhere): Debian's mirror only, the image's dpkg status.
debugfs -R 'cat /var/lib/dpkg/status' "$image/base.img" > "$WORK/apt/status" 2>/dev/null
grep -q '^Package: dpkg$' "$WORK/apt/status" || die "could not read the image's dpkg status from $image/base.img"
cat > "$WORK/apt/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE-updates main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || die "missing /usr/share/keyrings/debian-archive-keyring.gpg (apt-get install -y debian-archive-keyring)"
cat > "$WORK/apt/apt.conf" <<EOF
Dir::Etc::Parts "$WORK/apt/empty";
Dir::Etc::Main "/dev/null";
Dir::Etc::SourceList "$WORK/apt/sources.list";
Dir::Etc::SourceParts "$WORK/apt/empty";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$WORK/apt/empty";
Dir::State "$WORK/apt/state";
Dir::State::status "$WORK/apt/status";
Dir::Cache "$WORK/apt/cache";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
APT::Install-Recommends "false";
APT::Sandbox::User "root";
Acquire::Languages "none";
Debug::NoLocking "true";
EOF
export APT_CONFIG="$WORK/apt/apt.conf"
log "apt-get update (Debian $SUITE from $MIRROR, private lists)"
apt-get -q update > "$WORK/apt-update.log" 2>&1 || { tail -n 20 "$WORK/apt-update.log" >&2; die "apt-get update failed"; }
apt-get -q install --simulate "${DEBIAN_PACKAGES[@]}" > "$WORK/simulate.log" 2>&1 \
    || { cat "$WORK/simulate.log" >&2; die "apt-get install --simulate ${DEBIAN_PACKAGES[*]} failed against the image's packages"; }
mapfile -t wanted < <(awk '$1 == "Inst" { print $2 }' "$WORK/simulate.log")
[ ${#wanted[@]} -gt 0 ] || die "nothing to install? (see $WORK/simulate.log)"
log "from Debian: ${wanted[*]}"
(cd "$WORK/repo" && apt-get -q download "${wanted[@]}") > "$WORK/download.log" 2>&1 \
    || { tail -n 20 "$WORK/download.log" >&2; die "apt-get download failed"; }
unset APT_CONFIG

# --- STAND-IN kubeadm, kubelet, kubectl ---------------------------------------
standin_deb() { # name description
    local name=$1 d="$WORK/build/$1"
    install -d "$d/DEBIAN" "$d/usr/bin"
    install -m 755 "$HERE/standin/$name" "$d/usr/bin/$name"
    if [ "$name" = kubelet ]; then
        install -d "$d/lib/systemd/system"
        install -m 644 "$HERE/standin/kubelet.service" "$d/lib/systemd/system/kubelet.service"
        # enabled and started on install, as the real package does
        printf '#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then systemctl daemon-reload; systemctl enable --now kubelet.service; fi\n' > "$d/DEBIAN/postinst"
        printf '#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then systemctl disable --now kubelet.service || true; fi\n' > "$d/DEBIAN/prerm"
        chmod 755 "$d/DEBIAN/postinst" "$d/DEBIAN/prerm"
    fi
    cat > "$d/DEBIAN/control" <<EOF
Package: $name
Version: $STANDIN_VERSION
Architecture: amd64
Maintainer: enssib kernel lab <apt@lab.enssib.invalid>
Section: admin
Priority: optional
Description: STAND-IN $name for the enssib kernel lab (not Kubernetes)
 $2
EOF
    dpkg-deb --root-owner-group -Zxz --build "$d" "$WORK/repo/${name}_${STANDIN_VERSION}_amd64.deb" >/dev/null
}
standin_deb kubeadm "Records its arguments; prints a join line; join writes /etc/kubernetes/kubelet.conf."
standin_deb kubelet "Records its arguments; kubelet.service keeps running and does nothing."
standin_deb kubectl "Records its arguments; answers version --client only."
rm -rf "$WORK/build"

# --- index and signatures -------------------------------------------------------
(
    cd "$WORK/repo"
    dpkg-scanpackages -m . /dev/null > Packages 2> "$WORK/scan.log"
    gzip -9kn Packages
    {
        echo "Origin: enssib-kernel-lab"
        echo "Label: enssib kernel lab"
        echo "Architectures: amd64 all"
        echo "Date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
        for sum in MD5Sum:md5sum SHA256:sha256sum; do
            echo "${sum%%:*}:"
            for f in Packages Packages.gz; do
                printf ' %s %s %s\n' "$(${sum#*:} "$f" | cut -d' ' -f1)" "$(stat -c %s "$f")" "$f"
            done
        done
    } > Release
    gpg --batch --yes --local-user "$FPR" --clearsign -o InRelease Release
    gpg --batch --yes --local-user "$FPR" --detach-sign --armor -o Release.gpg Release
)
gpg --batch --verify "$WORK/repo/InRelease" 2>/dev/null || die "the repository's InRelease does not verify"

END=$(date +%s)
{
    echo "recipe:    $HASH"
    echo "built:     $(date -Is) in $(( END - START )) s"
    echo "image:     $image"
    echo "key:       $FPR"
    echo "asked:     ${DEBIAN_PACKAGES[*]} (Debian $SUITE, $MIRROR)"
    echo "debian:    ${wanted[*]}"
    echo "stand-ins: kubeadm kubelet kubectl $STANDIN_VERSION"
    echo "size:      $(du -sh "$WORK/repo" | cut -f1)"
} > "$WORK/BUILD-INFO"
rm -rf "$WORK/apt"
touch "$WORK/.complete"
rm -rf "$OUT"
mv "$WORK" "$OUT"
log "apt repository ready in $(( END - START )) s: $OUT"

# Repositories of older recipes: removed unless a build holds their lock.
for old in "$CACHE_ROOT"/apt-*; do
    case "$old" in "$OUT"|*.lock|*.tmp|"$KEYDIR"|"$CACHE_ROOT/apt-key.lock") continue ;; esac
    [ -d "$old" ] || continue
    if ( flock -n 7 ) 7>"$old.lock"; then rm -rf "$old" "$old.lock"; log "removed $old (older recipe)"; fi
done
emit
