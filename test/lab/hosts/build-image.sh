#!/usr/bin/env bash
# Build the hosts-lab image enssib-lab-host:<hash> without pulling anything:
# debootstrap a minimal Debian bookworm, configure OpenSSH/sudo/users, then
# `docker import` the tarball. Prints the image tag as the last line of stdout.
#
#   test/lab/hosts/build-image.sh
#
# <hash> = first 16 hex digits of the sha256 of the recipe: this script plus
# every file under image/ (names and contents). The rootfs tarball is cached in
# /var/cache/enssib-lab/hosts-<hash>.tar, so a fresh Docker engine re-imports
# it without debootstrapping again; the downloaded .debs are cached in
# /var/cache/enssib-lab/debs for the next recipe change.
#
# Environment:
#   ENSSIB_DEBIAN_MIRROR   default http://deb.debian.org/debian
#   ENSSIB_LAB_CACHE       default /var/cache/enssib-lab
set -euo pipefail

log() { printf 'build-image: %s\n' "$*" >&2; }
die() { printf 'build-image: ERROR: %s\n' "$*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MIRROR=${ENSSIB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${ENSSIB_LAB_CACHE:-/var/cache/enssib-lab}
SUITE=bookworm
PACKAGES=openssh-server,sudo,iproute2,procps,python3
STANDINS=/opt/enssib-stand-ins/bin
IMAGE_PATH="$STANDINS:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

recipe_hash() {
  (
    cd "$here"
    {
      printf '%s\0' build-image.sh
      cat build-image.sh
      find image -type f -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' f; do
        printf '\0%s\0' "$f"
        cat "$f"
      done
    } | sha256sum | cut -c1-16
  )
}

hash=$(recipe_hash)
tag="enssib-lab-host:$hash"
tarball="$CACHE/hosts-$hash.tar"

timeout 10 docker info >/dev/null 2>&1 ||
  die "the Docker engine does not answer; run test/lab/hosts/ensure-docker.sh first"

if docker image inspect "$tag" >/dev/null 2>&1; then
  log "$tag is present"
  printf '%s\n' "$tag"
  exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/build.lock"
flock -w 900 9 || die "timed out waiting for another build (lock $CACHE/build.lock)"

import_tarball() {
  log "importing $tarball as $tag"
  docker import \
    --change "ENV PATH=$IMAGE_PATH" \
    --change "LABEL enssib-lab.recipe=$hash" \
    --change 'EXPOSE 22' \
    --change 'CMD ["/usr/local/sbin/enssib-lab-entrypoint"]' \
    --message "enssib hosts lab, recipe $hash" \
    "$tarball" "$tag" >/dev/null
}

if docker image inspect "$tag" >/dev/null 2>&1; then
  log "$tag was built meanwhile"
elif [[ -s $tarball ]]; then
  import_tarball
else
  [[ $(id -u) -eq 0 ]] || die "debootstrap needs root"
  command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install -y debootstrap"
  start=$SECONDS
  work=$(mktemp -d "$CACHE/build-$hash.XXXXXX")
  rootfs="$work/rootfs"

  cleanup() {
    # Unmount anything debootstrap left mounted inside the rootfs before deleting.
    local m
    if [[ -d $rootfs ]]; then
      awk -v r="$rootfs" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts |
        sort -r | while read -r m; do umount -l "$m" || true; done
    fi
    rm -rf --one-file-system "$work"
  }
  trap cleanup EXIT

  mkdir -p "$CACHE/debs"
  log "debootstrap --variant=minbase $SUITE from $MIRROR (a few minutes; log: $work/debootstrap.log)"
  if ! nice -n 10 debootstrap --variant=minbase --include="$PACKAGES" \
    --cache-dir="$CACHE/debs" "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2 || true
    [[ -f $rootfs/debootstrap/debootstrap.log ]] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
    die "debootstrap failed"
  fi

  log "configuring the rootfs"
  in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

  # Users: admin (passwordless sudo) and nosudo (no sudo rights). Password
  # field '*' = no password login, but not "locked" (pubkey login works).
  for u in admin nosudo; do
    in_root id "$u" >/dev/null 2>&1 || in_root useradd --create-home --shell /bin/bash "$u"
    in_root usermod --password '*' "$u"
  done
  in_root usermod --password '*' root

  install -m 0755 "$here/image/entrypoint.sh" "$rootfs/usr/local/sbin/enssib-lab-entrypoint"
  install -m 0644 "$here/image/sshd_config.conf" "$rootfs/etc/ssh/sshd_config.d/00-enssib-lab.conf"
  install -m 0440 "$here/image/sudoers" "$rootfs/etc/sudoers.d/enssib-lab"
  in_root visudo -c -q || die "sudoers check failed"

  # pam_loginuid cannot write /proc/self/loginuid in a container: make it optional.
  sed -i 's/^session\s\+required\s\+pam_loginuid.so/session optional pam_loginuid.so/' "$rootfs/etc/pam.d/sshd"

  # Login shells and su get the stand-ins first on PATH too.
  sed -i "s|PATH=\"/usr/local/sbin:|PATH=\"$STANDINS:/usr/local/sbin:|; s|PATH=\"/usr/local/bin:|PATH=\"$STANDINS:/usr/local/bin:|" "$rootfs/etc/profile"
  sed -i "s|^ENV_SUPATH\s\+PATH=|&$STANDINS:|; s|^ENV_PATH\s\+PATH=|&$STANDINS:|" "$rootfs/etc/login.defs"

  # Mount point for the stand-ins, and a log every stand-in (any user) can append to.
  mkdir -p "$rootfs$STANDINS"
  install -m 0666 /dev/null "$rootfs/var/log/enssib-stand-ins.log"

  # Each container generates its own host keys at start.
  rm -f "$rootfs"/etc/ssh/ssh_host_*
  # Smaller image: no docs, man pages, apt lists or package caches.
  rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/*.log.* "$rootfs"/debootstrap
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
  : >"$rootfs/etc/machine-id"

  # Check sshd accepts the configuration (with throw-away host keys).
  in_root sh -c 'mkdir -p /run/sshd && ssh-keygen -q -A && /usr/sbin/sshd -t' || die "sshd -t rejected the configuration"
  rm -f "$rootfs"/etc/ssh/ssh_host_*

  # Docker provides /dev; never touch it while anything is mounted in the rootfs.
  if awk -v r="$rootfs" '$2 == r || index($2, r "/") == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    die "something is still mounted under $rootfs"
  fi
  rm -rf --one-file-system "${rootfs:?}"/dev/*

  log "writing $tarball"
  tar -C "$rootfs" --numeric-owner -cf "$tarball.partial" .
  mv -f "$tarball.partial" "$tarball"
  import_tarball
  log "built $tag in $((SECONDS - start))s ($(du -h "$tarball" | cut -f1) tarball)"
fi

# Drop older hosts-lab images nobody uses (their tarballs stay in the cache).
docker image ls --format '{{.Repository}}:{{.Tag}}' enssib-lab-host | while read -r old; do
  [[ $old == "$tag" ]] && continue
  if docker image rm "$old" >/dev/null 2>&1; then log "removed old image $old"; fi
done

printf '%s\n' "$tag"
