#!/bin/bash
# STAND-IN for the storage and initiator binaries on the hosts lab (containers
# have no LVM, DRBD, SCST, iSCSI or multipath). One script, installed under
# each tool's name: it appends its argv to /var/log/enssib-stand-ins.log
# (tab-separated), sleeps $DELAY seconds (from stand-in.conf beside it; also
# $DELAY_<tool>, e.g. DELAY_lvcreate=2), keeps
# just enough state under /var/lib/enssib-stand-in to answer the tool's later
# queries in the real output formats, and exits with the real exit codes.
#
# Not simulated: DRBD replication between containers (each storage container
# keeps its own LVM state: data2 learns an LV when it activates it, with size 0,
# and forgets it when it deactivates it),
# real discovery (a portal that was discovered advertises every target asked
# for), real SCSI disks (a login adds a fake sdX; multipath groups the disks of
# one target into one map whose WWID is derived from the IQN; a disk listed in
# $S/iscsi/failed is shown as a failed path).
set -u
name=${0##*/}
here=$(dirname "$(readlink -f "$0")")
S=/var/lib/enssib-stand-in
mkdir -p "$S"
DELAY=0
VG=vg_cluster
VG_SIZE=1099511627776
EXTENT=4194304
[ -r "$here/stand-in.conf" ] && . "$here/stand-in.conf"
{ printf '%s' "$name"; for a in "$@"; do printf '\t%s' "$a"; done; printf '\n'; } >>/var/log/enssib-stand-ins.log
[ "$DELAY" != 0 ] && sleep "$DELAY"
tool_delay=DELAY_${name//[.-]/_}
[ -n "${!tool_delay:-}" ] && sleep "${!tool_delay}"

die() { echo "  $*" >&2; exit "${EXIT:-5}"; }

bytes() { # 200g 512m 1t 123b -> bytes
  local v=${1,,} n u
  n=${v%[bkmgt]}; u=${v:${#n}}
  case $u in b|'') echo "$n" ;; k) echo $((n * 1024)) ;; m) echo $((n * 1048576)) ;; g) echo $((n * 1073741824)) ;; t) echo $((n * 1099511627776)) ;; esac
}

lvdir() { echo "$S/lvm/$VG/$1"; }
lv_list() { ls "$S/lvm/$VG" 2>/dev/null; }
vg_used() { local t=0 l; for l in $(lv_list); do t=$((t + $(cat "$(lvdir "$l")/size"))); done; echo "$t"; }

case $name in
drbdadm)
  f=$S/drbd
  [ -f "$f" ] || printf 'Primary/Primary\nConnected\nUpToDate/UpToDate\n' >"$f"
  case ${1:-} in role) sed -n 1p "$f" ;; cstate) sed -n 2p "$f" ;; dstate) sed -n 3p "$f" ;; sh-dev) echo /dev/drbd0 ;; *) die "drbdadm: unsupported: $*" ;; esac
  ;;
vgs)
  vg=${!#}
  [ "$vg" = "$VG" ] || EXIT=5 die "Volume group \"$vg\" not found"
  used=$(vg_used)
  printf '  {\n      "report": [\n          {\n              "vg": [\n'
  printf '                  {"vg_name":"%s", "vg_size":"%s", "vg_free":"%s", "vg_extent_size":"%s", "vg_extent_count":"%s", "vg_free_count":"%s"}\n' \
    "$VG" "$VG_SIZE" $((VG_SIZE - used)) "$EXTENT" $((VG_SIZE / EXTENT)) $(((VG_SIZE - used) / EXTENT))
  printf '              ]\n          }\n      ]\n  }\n'
  ;;
pvs)
  # the VG's physical volume: the DRBD device, or PV=... from stand-in.conf (a VG on a local disk)
  [ "${!#}" = "vg_name=$VG" ] || die "pvs stand-in: unsupported: $*"
  echo "  ${PV:-/dev/drbd0}"
  ;;
lvs)
  vg=${!#} only=''
  case $vg in */*) only=${vg#*/}; vg=${vg%%/*} ;; esac
  [ "$vg" = "$VG" ] || EXIT=5 die "Volume group \"$vg\" not found"
  [ -z "$only" ] || [ -d "$(lvdir "$only")" ] || EXIT=5 die "Failed to find logical volume \"$vg/$only\""
  printf '  {\n      "report": [\n          {\n              "lv": [\n'
  sep=''
  for l in $(lv_list); do
    [ -z "$only" ] || [ "$l" = "$only" ] || continue
    d=$(lvdir "$l")
    act=''; attr='-wi-------'
    if [ -f "$d/active" ]; then act=active; attr='-wi-a-----'; fi
    printf '%s                  {"lv_name":"%s", "vg_name":"%s", "lv_size":"%s", "lv_tags":"%s", "lv_attr":"%s", "lv_active":"%s", "lv_path":"/dev/%s/%s", "lv_device_open":""}' \
      "$sep" "$l" "$VG" "$(cat "$d/size")" "$(cat "$d/tags")" "$attr" "$act" "$VG" "$l"
    sep=$',\n'
  done
  printf '\n              ]\n          }\n      ]\n  }\n'
  ;;
lvcreate)
  lv='' size='' tags=''
  while [ $# -gt 1 ]; do
    case $1 in
    --name) lv=$2; shift 2 ;;
    --size) size=$(bytes "$2"); shift 2 ;;
    --addtag) tags=${tags:+$tags,}$2; shift 2 ;;
    --yes) shift ;;
    *) shift 2 ;;
    esac
  done
  [ "$1" = "$VG" ] || EXIT=5 die "Volume group \"$1\" not found"
  [ ! -d "$(lvdir "$lv")" ] || EXIT=5 die "Logical Volume \"$lv\" already exists in volume group \"$VG\""
  size=$(( (size + EXTENT - 1) / EXTENT * EXTENT ))
  [ $((VG_SIZE - $(vg_used))) -ge "$size" ] || EXIT=5 die "Volume group \"$VG\" has insufficient free space"
  mkdir -p "$(lvdir "$lv")"
  echo "$size" >"$(lvdir "$lv")/size"; echo "$tags" >"$(lvdir "$lv")/tags"; : >"$(lvdir "$lv")/active"
  echo "  Logical volume \"$lv\" created."
  ;;
lvchange)
  ref=${!#}; lv=${ref#*/}; d=$(lvdir "$lv")
  case "$1 ${2:-}" in
  "--activate y") if [ ! -d "$d" ]; then mkdir -p "$d"; echo 0 >"$d/size"; : >"$d/tags"; : >"$d/replica"; fi; : >"$d/active" ;;
  "--activate n")
    [ -d "$d" ] || EXIT=5 die "Failed to find logical volume \"$ref\""
    # an LV this host only knew by activating it (the metadata host owns it): gone from its view once inactive
    if [ -f "$d/replica" ]; then rm -rf "$d"; else rm -f "$d/active"; fi ;;
  "--refresh $ref") [ -d "$d" ] || EXIT=5 die "Failed to find logical volume \"$ref\"" ;;
  *) die "lvchange: unsupported: $*" ;;
  esac
  ;;
lvextend)
  ref=${!#}; lv=${ref#*/}; d=$(lvdir "$lv")
  [ -d "$d" ] || EXIT=5 die "Failed to find logical volume \"$ref\""
  size=$(bytes "$2"); size=$(( (size + EXTENT - 1) / EXTENT * EXTENT ))
  echo "$size" >"$d/size"
  echo "  Logical volume $ref successfully resized."
  ;;
lvremove)
  ref=${!#}; lv=${ref#*/}; d=$(lvdir "$lv")
  [ -d "$d" ] || EXIT=5 die "Failed to find logical volume \"$ref\""
  rm -rf "$d" "$S/fs/${lv}"
  echo "  Logical volume \"$lv\" successfully removed."
  ;;
blockdev)
  dev=${!#}; lv=${dev##*/}; d=$(lvdir "$lv")
  [ -f "$d/active" ] || EXIT=1 die "blockdev: cannot open $dev: No such file or directory"
  cat "$d/size"
  ;;
blkid)
  dev=${!#}; lv=${dev##*/}
  [ -f "$S/fs/$lv" ] || exit 2
  echo "$dev: TYPE=\"$(cat "$S/fs/$lv")\""
  ;;
wipefs)
  dev=${!#}; lv=${dev##*/}
  [ -f "$S/fs/$lv" ] && printf 'DEVICE OFFSET TYPE UUID LABEL\n%s 0x438 %s 00000000-0000-0000-0000-000000000000\n' "$lv" "$(cat "$S/fs/$lv")"
  exit 0
  ;;
mkfs.ext4 | mkfs.xfs)
  dev=${!#}; lv=${dev##*/}
  [ -f "$(lvdir "$lv")/active" ] || EXIT=1 die "$name: $dev: No such file or directory"
  mkdir -p "$S/fs"; echo "${name#mkfs.}" >"$S/fs/$lv"
  ;;
scstadmin)
  run=$S/scst.running
  [ "${1:-}" = -noprompt ] || die "scstadmin stand-in: expected -noprompt first"
  shift
  case ${1:-} in
  -write_config) if [ -f "$run" ]; then cp "$run" "$2"; else printf '# Automatically generated by SCST Configurator v3.7.0.\n\n' >"$2"; fi ;;
  -config) [ -f "$2" ] || EXIT=1 die "scstadmin: cannot read $2"; cp "$2" "$run"; echo "All done." ;;
  -disable_target | -resync_dev) ;;
  -rem_target | -close_dev)
    kw=TARGET; [ "$1" = -close_dev ] && kw=DEVICE
    [ -f "$run" ] || exit 1
    awk -v kw="$kw" -v n="$2" '
      skip { depth += gsub(/\{/, "{"); depth -= gsub(/\}/, "}"); if (depth <= 0) skip = 0; next }
      $1 == kw && $2 == n && /\{[ \t]*$/ { skip = 1; depth = 1; next }
      { print }' "$run" >"$run.tmp" && mv "$run.tmp" "$run"
    ;;
  *) die "scstadmin stand-in: unsupported: $*" ;;
  esac
  ;;
iscsiadm)
  N=$S/iscsi; mkdir -p "$N"; touch "$N/discovered" "$N/nodes" "$N/sessions"
  args=" $* "
  arg() { local k=$1; shift; while [ $# -gt 0 ]; do [ "$1" = "$k" ] && { echo "${2:-}"; return; }; shift; done; }
  T=$(arg -T "$@"); P=$(arg -p "$@")
  case $args in
  *" -m discovery "*)
    grep -qxF "$P" "$N/discovered" || echo "$P" >>"$N/discovered" ;;
  *" -m session -P 3 "*)
    [ -s "$N/sessions" ] || EXIT=21 die "iscsiadm: No active sessions."
    echo "iSCSI Transport Class version 2.0-870"; echo "version 2.1.8"
    for t in $(cut -d' ' -f2 "$N/sessions" | sort -u); do
      echo "Target: $t (non-flash)"
      while read -r sid iqn portal disk; do
        [ "$iqn" = "$t" ] || continue
        printf '\tCurrent Portal: %s,1\n\tPersistent Portal: %s,1\n' "$portal" "$portal"
        printf '\t\tSID: %s\n\t\tiSCSI Connection State: LOGGED IN\n\t\tiSCSI Session State: LOGGED_IN\n' "$sid"
        printf '\t\t************************\n\t\tAttached SCSI devices:\n\t\t************************\n'
        printf '\t\tHost Number: %s\tState: running\n\t\tscsi%s Channel 00 Id 0 Lun: 0\n\t\t\tAttached scsi disk %s\t\tState: running\n' "$sid" "$sid" "$disk"
      done <"$N/sessions"
    done ;;
  *" -m node "*" --login "*)
    grep -qxF "$P,1 $T" "$N/nodes" || EXIT=21 die "iscsiadm: No records found"
    ! awk -v t="$T" -v p="$P" '$2==t && $3==p {f=1} END {exit !f}' "$N/sessions" || EXIT=15 die "iscsiadm: default: 1 session requested, but 1 already present."
    sid=$(( $(cat "$N/sid" 2>/dev/null || echo 0) + 1 )); echo "$sid" >"$N/sid"
    disk=sd$(printf "\\$(printf '%03o' $((96 + sid)))")
    echo "$sid $T $P $disk" >>"$N/sessions"
    echo "Logging in to [iface: default, target: $T, portal: ${P%:*},${P##*:}]"
    echo "Login to [iface: default, target: $T, portal: ${P%:*},${P##*:}] successful." ;;
  *" -m node "*" --logout "*)
    awk -v t="$T" -v p="$P" '$2==t && $3==p {f=1} END {exit !f}' "$N/sessions" || EXIT=21 die "iscsiadm: No matching sessions found"
    awk -v t="$T" -v p="$P" '!($2==t && $3==p)' "$N/sessions" >"$N/s.tmp" && mv "$N/s.tmp" "$N/sessions"
    echo "Logout of [sid: ?, target: $T, portal: ${P%:*},${P##*:}] successful." ;;
  *" -m node "*" --rescan "*)
    awk -v t="$T" -v p="$P" '$2==t && $3==p {f=1} END {exit !f}' "$N/sessions" || EXIT=21 die "iscsiadm: No session found." ;;
  *" -m node "*" -o delete "*)
    grep -q " $T\$" "$N/nodes" || EXIT=21 die "iscsiadm: No records found"
    grep -v " $T\$" "$N/nodes" >"$N/n.tmp"; mv "$N/n.tmp" "$N/nodes" ;;
  *" -m node "*" -o show "*)
    grep -qxF "$P" "$N/discovered" || EXIT=21 die "iscsiadm: No records found"
    grep -qxF "$P,1 $T" "$N/nodes" || echo "$P,1 $T" >>"$N/nodes"
    echo "node.name = $T"; echo "node.conn[0].address = ${P%:*}" ;;
  " -m node ")
    [ -s "$N/nodes" ] || EXIT=21 die "iscsiadm: No records found"
    cat "$N/nodes" ;;
  *) die "iscsiadm stand-in: unsupported: $*" ;;
  esac
  ;;
multipath)
  N=$S/iscsi
  case ${1:-} in
  -ll)
    [ -s "$N/sessions" ] || exit 0
    i=0
    for t in $(cut -d' ' -f2 "$N/sessions" | sort -u); do
      wwid=36001405$(printf '%s' "$t" | md5sum | cut -c1-25)
      echo "$wwid dm-$i LIO-ORG,${t##*:}"
      echo "size=1.0G features='0' hwhandler='1 alua' wp=rw"
      echo "\`-+- policy='service-time 0' prio=50 status=active"
      while read -r sid iqn portal disk; do
        [ "$iqn" = "$t" ] || continue
        state='active ready running'
        grep -qxF "$disk" "$N/failed" 2>/dev/null && state='failed faulty offline'
        echo "  |- $sid:0:0:0 $disk 8:$((sid * 16)) $state"
      done <"$N/sessions"
      i=$((i + 1))
    done ;;
  -f) ;;
  *) die "multipath stand-in: unsupported: $*" ;;
  esac
  ;;
multipathd) echo ok ;;
dmsetup)
  N=$S/iscsi
  [ -s "$N/sessions" ] || { echo "No devices found"; exit 0; }
  for t in $(cut -d' ' -f2 "$N/sessions" | sort -u); do echo "36001405$(printf '%s' "$t" | md5sum | cut -c1-25) 0"; done ;;
udevadm) ;;
*) die "stand-in: unknown tool $name" ;;
esac
exit 0
