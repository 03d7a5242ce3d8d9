#!/bin/bash
# STAND-IN for the storage and initiator binaries on the hosts lab (containers
# have no LVM, DRBD, SCST, iSCSI or multipath). One script, installed under
# each tool's name: it appends its argv to /var/log/enssib-stand-ins.log
# (tab-separated), sleeps $DELAY seconds (from stand-in.conf beside it; also
# $DELAY_<tool>, e.g. DELAY_lvcreate=2), keeps
# just enough state under /var/lib/enssib-stand-in to answer the tool's later
# queries in the real output formats, and exits with the real exit codes.
#
# A call must cost about what its sleep costs, so that a fan-out benchmark
# measures enssib and ssh, not the stand-in: bash builtins only (no cat, sed,
# awk, grep, sort, md5sum, no $(...) subshell); the only programs it starts are
# sleep, and mkdir/rm/mv when state changes. test/bench/stand-in-cpu.mjs
# measures the CPU a call takes.
#
# Not simulated: DRBD replication between containers (each storage container
# keeps its own LVM state: data2 learns an LV when it activates it, with size 0,
# and forgets it when it deactivates it),
# real discovery (a portal that was discovered advertises every target asked
# for), real SCSI disks (a login adds a fake sdX; multipath groups the disks of
# one target into one map whose WWID is derived from the IQN; a disk listed in
# $S/iscsi/failed is shown as a failed path).
set -u
shopt -s nullglob
name=${0##*/}
S=/var/lib/enssib-stand-in
DELAY=0
VG=vg_cluster
VG_SIZE=1099511627776
EXTENT=4194304
[[ -r ${0%/*}/stand-in.conf ]] && . "${0%/*}/stand-in.conf"
[[ -d $S ]] || mkdir -p "$S"
log=$name
for a; do log+=$'\t'$a; done
printf '%s\n' "$log" >>/var/log/enssib-stand-ins.log
[[ $DELAY != 0 ]] && sleep "$DELAY"
tool_delay=DELAY_${name//[.-]/_}
[[ -n ${!tool_delay:-} ]] && sleep "${!tool_delay}"

die() { printf '  %s\n' "$*" >&2; exit "${EXIT:-5}"; }

bytes() { # bytes VAR 200g|512m|1t|123b: VAR = the size in bytes
  local v=${2,,} n u
  n=${v%[bkmgt]}; u=${v:${#n}}
  case $u in b | '') printf -v "$1" %s "$n" ;; k) printf -v "$1" %s $((n * 1024)) ;; m) printf -v "$1" %s $((n * 1048576)) ;;
  g) printf -v "$1" %s $((n * 1073741824)) ;; t) printf -v "$1" %s $((n * 1099511627776)) ;; esac
}
extents() { printf -v "$1" %s $(( (${!1} + EXTENT - 1) / EXTENT * EXTENT )); }

slurp() { # slurp VAR FILE: VAR = the whole file
  IFS= read -rd '' "$1" <"$2" || true
}
has_line() { # has_line FILE LINE
  local l
  while IFS= read -r l; do [[ $l == "$2" ]] && return 0; done <"$1"
  return 1
}
vg_used() { # used = bytes taken by the LVs
  local d s
  used=0
  for d in "$S/lvm/$VG"/*/; do read -r s <"${d}size"; used=$((used + s)); done
}

# The iSCSI state: sessions are lines "sid iqn portal disk".
N=$S/iscsi
session_targets() { # targets = the IQNs with a session, sorted, once each
  local sid iqn portal disk t i
  targets=()
  [[ -f $N/sessions ]] || return 0
  while read -r sid iqn portal disk; do
    for t in "${targets[@]}"; do [[ $t == "$iqn" ]] && continue 2; done
    i=${#targets[@]}
    while ((i > 0)) && [[ ${targets[i - 1]} > $iqn ]]; do targets[i]=${targets[i - 1]}; i=$((i - 1)); done
    targets[i]=$iqn
  done <"$N/sessions"
}
wwid_of() { # wwid = 36001405 + 25 hex digits derived from the IQN (two FNV-1a hashes)
  local s=$1 i c h1=-3750763034362895579 h2=1469598103934665603
  for ((i = 0; i < ${#s}; i++)); do
    printf -v c %d "'${s:i:1}"
    h1=$(((h1 ^ c) * 1099511628211)); h2=$(((h2 ^ (c + 7)) * 1099511628211))
  done
  h1=$(((h1 ^ ((h1 >> 29) & 0x7ffffffff)) * -4658895280553007687)); h2=$(((h2 ^ ((h2 >> 31) & 0x1ffffffff)) * -7723592293110705685))
  printf -v wwid '36001405%016x%016x' "$h1" "$h2"
  wwid=${wwid:0:33}
}
has_session() { # has_session IQN PORTAL
  local sid iqn portal disk
  [[ -f $N/sessions ]] || return 1
  while read -r sid iqn portal disk; do [[ $iqn == "$1" && $portal == "$2" ]] && return 0; done <"$N/sessions"
  return 1
}

case $name in
drbdadm)
  f=$S/drbd
  [[ -f $f ]] || printf 'Primary/Primary\nConnected\nUpToDate/UpToDate\n' >"$f"
  mapfile -t st <"$f"
  case ${1:-} in role) printf '%s\n' "${st[0]}" ;; cstate) printf '%s\n' "${st[1]}" ;; dstate) printf '%s\n' "${st[2]}" ;; sh-dev) echo /dev/drbd0 ;; *) die "drbdadm: unsupported: $*" ;; esac
  ;;
vgs)
  vg=${!#}
  [[ $vg == "$VG" ]] || EXIT=5 die "Volume group \"$vg\" not found"
  vg_used
  printf '  {\n      "report": [\n          {\n              "vg": [\n'
  printf '                  {"vg_name":"%s", "vg_size":"%s", "vg_free":"%s", "vg_extent_size":"%s", "vg_extent_count":"%s", "vg_free_count":"%s"}\n' \
    "$VG" "$VG_SIZE" $((VG_SIZE - used)) "$EXTENT" $((VG_SIZE / EXTENT)) $(((VG_SIZE - used) / EXTENT))
  printf '              ]\n          }\n      ]\n  }\n'
  ;;
pvs)
  # the VG's physical volume: the DRBD device, or PV=... from stand-in.conf (a VG on a local disk)
  [[ ${!#} == "vg_name=$VG" ]] || die "pvs stand-in: unsupported: $*"
  echo "  ${PV:-/dev/drbd0}"
  ;;
lvs)
  vg=${!#} only=''
  case $vg in */*) only=${vg#*/}; vg=${vg%%/*} ;; esac
  [[ $vg == "$VG" ]] || EXIT=5 die "Volume group \"$vg\" not found"
  [[ -z $only || -d $S/lvm/$VG/$only ]] || EXIT=5 die "Failed to find logical volume \"$vg/$only\""
  printf '  {\n      "report": [\n          {\n              "lv": [\n'
  sep=''
  for d in "$S/lvm/$VG"/*/; do
    d=${d%/}; l=${d##*/}
    [[ -z $only || $l == "$only" ]] || continue
    act=''; attr='-wi-------'
    if [[ -f $d/active ]]; then act=active; attr='-wi-a-----'; fi
    read -r size <"$d/size"; tags=''; read -r tags <"$d/tags"
    printf '%s                  {"lv_name":"%s", "vg_name":"%s", "lv_size":"%s", "lv_tags":"%s", "lv_attr":"%s", "lv_active":"%s", "lv_path":"/dev/%s/%s", "lv_device_open":""}' \
      "$sep" "$l" "$VG" "$size" "$tags" "$attr" "$act" "$VG" "$l"
    sep=$',\n'
  done
  printf '\n              ]\n          }\n      ]\n  }\n'
  ;;
lvcreate)
  lv='' size=0 tags=''
  while (($# > 1)); do
    case $1 in
    --name) lv=$2; shift 2 ;;
    --size) bytes size "$2"; shift 2 ;;
    --addtag) tags=${tags:+$tags,}$2; shift 2 ;;
    --yes) shift ;;
    *) shift 2 ;;
    esac
  done
  [[ $1 == "$VG" ]] || EXIT=5 die "Volume group \"$1\" not found"
  d=$S/lvm/$VG/$lv
  [[ ! -d $d ]] || EXIT=5 die "Logical Volume \"$lv\" already exists in volume group \"$VG\""
  extents size
  vg_used
  ((VG_SIZE - used >= size)) || EXIT=5 die "Volume group \"$VG\" has insufficient free space"
  mkdir -p "$d"
  printf '%s\n' "$size" >"$d/size"; printf '%s\n' "$tags" >"$d/tags"; : >"$d/active"
  echo "  Logical volume \"$lv\" created."
  ;;
lvchange)
  ref=${!#}; lv=${ref#*/}; d=$S/lvm/$VG/$lv
  case "$1 ${2:-}" in
  "--activate y") if [[ ! -d $d ]]; then mkdir -p "$d"; echo 0 >"$d/size"; : >"$d/tags"; : >"$d/replica"; fi; : >"$d/active" ;;
  "--activate n")
    [[ -d $d ]] || EXIT=5 die "Failed to find logical volume \"$ref\""
    # an LV this host only knew by activating it (the metadata host owns it): gone from its view once inactive
    if [[ -f $d/replica ]]; then rm -rf "$d"; else rm -f "$d/active"; fi ;;
  "--refresh $ref") [[ -d $d ]] || EXIT=5 die "Failed to find logical volume \"$ref\"" ;;
  *) die "lvchange: unsupported: $*" ;;
  esac
  ;;
lvextend)
  ref=${!#}; lv=${ref#*/}; d=$S/lvm/$VG/$lv
  [[ -d $d ]] || EXIT=5 die "Failed to find logical volume \"$ref\""
  bytes size "$2"; extents size
  printf '%s\n' "$size" >"$d/size"
  echo "  Logical volume $ref successfully resized."
  ;;
lvremove)
  ref=${!#}; lv=${ref#*/}; d=$S/lvm/$VG/$lv
  [[ -d $d ]] || EXIT=5 die "Failed to find logical volume \"$ref\""
  rm -rf "$d" "$S/fs/${lv}"
  echo "  Logical volume \"$lv\" successfully removed."
  ;;
blockdev)
  dev=${!#}; d=$S/lvm/$VG/${dev##*/}
  [[ -f $d/active ]] || EXIT=1 die "blockdev: cannot open $dev: No such file or directory"
  read -r size <"$d/size"; printf '%s\n' "$size"
  ;;
blkid)
  dev=${!#}; f=$S/fs/${dev##*/}
  [[ -f $f ]] || exit 2
  read -r fs <"$f"; printf '%s: TYPE="%s"\n' "$dev" "$fs"
  ;;
wipefs)
  dev=${!#}; f=$S/fs/${dev##*/}
  if [[ -f $f ]]; then read -r fs <"$f"; printf 'DEVICE OFFSET TYPE UUID LABEL\n%s 0x438 %s 00000000-0000-0000-0000-000000000000\n' "${dev##*/}" "$fs"; fi
  exit 0
  ;;
mkfs.ext4 | mkfs.xfs)
  dev=${!#}; lv=${dev##*/}
  [[ -f $S/lvm/$VG/$lv/active ]] || EXIT=1 die "$name: $dev: No such file or directory"
  [[ -d $S/fs ]] || mkdir -p "$S/fs"
  printf '%s\n' "${name#mkfs.}" >"$S/fs/$lv"
  ;;
scstadmin)
  run=$S/scst.running
  [[ ${1:-} == -noprompt ]] || die "scstadmin stand-in: expected -noprompt first"
  shift
  case ${1:-} in
  -write_config) if [[ -f $run ]]; then slurp conf "$run"; else conf=$'# Automatically generated by SCST Configurator v3.7.0.\n\n'; fi; printf '%s' "$conf" >"$2" ;;
  -config) [[ -f $2 ]] || EXIT=1 die "scstadmin: cannot read $2"; slurp conf "$2"; printf '%s' "$conf" >"$run"; echo "All done." ;;
  -disable_target | -resync_dev) ;;
  -rem_target | -close_dev)
    kw=TARGET; [[ $1 == -close_dev ]] && kw=DEVICE
    [[ -f $run ]] || exit 1
    # drop the block "<kw> <name> {" ... "}" (nested braces counted), keep every other line
    kept='' skip=0 depth=0
    while IFS= read -r line || [[ -n $line ]]; do
      if ((skip)); then
        o=${line//[^\{]/}; c=${line//[^\}]/}
        depth=$((depth + ${#o} - ${#c}))
        ((depth <= 0)) && skip=0
        continue
      fi
      if [[ $line =~ ^[[:space:]]*([^[:space:]]+)[[:space:]]+([^[:space:]]+) && ${BASH_REMATCH[1]} == "$kw" && ${BASH_REMATCH[2]} == "$2" && $line =~ \{[[:space:]]*$ ]]; then
        skip=1 depth=1
        continue
      fi
      kept+=$line$'\n'
    done <"$run"
    printf '%s' "$kept" >"$run"
    ;;
  *) die "scstadmin stand-in: unsupported: $*" ;;
  esac
  ;;
iscsiadm)
  [[ -d $N ]] || mkdir -p "$N"
  for f in discovered nodes sessions; do [[ -e $N/$f ]] || : >"$N/$f"; done
  args=" $* "
  T='' P=''
  prev=''
  for a; do
    case $prev in -T) T=$a ;; -p) P=$a ;; esac
    prev=$a
  done
  case $args in
  *" -m discovery "*)
    has_line "$N/discovered" "$P" || printf '%s\n' "$P" >>"$N/discovered" ;;
  *" -m session -P 3 "*)
    [[ -s $N/sessions ]] || EXIT=21 die "iscsiadm: No active sessions."
    echo "iSCSI Transport Class version 2.0-870"; echo "version 2.1.8"
    session_targets
    for t in "${targets[@]}"; do
      echo "Target: $t (non-flash)"
      while read -r sid iqn portal disk; do
        [[ $iqn == "$t" ]] || continue
        printf '\tCurrent Portal: %s,1\n\tPersistent Portal: %s,1\n' "$portal" "$portal"
        printf '\t\tSID: %s\n\t\tiSCSI Connection State: LOGGED IN\n\t\tiSCSI Session State: LOGGED_IN\n' "$sid"
        printf '\t\t************************\n\t\tAttached SCSI devices:\n\t\t************************\n'
        printf '\t\tHost Number: %s\tState: running\n\t\tscsi%s Channel 00 Id 0 Lun: 0\n\t\t\tAttached scsi disk %s\t\tState: running\n' "$sid" "$sid" "$disk"
      done <"$N/sessions"
    done ;;
  *" -m node "*" --login "*)
    has_line "$N/nodes" "$P,1 $T" || EXIT=21 die "iscsiadm: No records found"
    ! has_session "$T" "$P" || EXIT=15 die "iscsiadm: default: 1 session requested, but 1 already present."
    sid=0; [[ -f $N/sid ]] && read -r sid <"$N/sid"
    sid=$((sid + 1)); printf '%s\n' "$sid" >"$N/sid"
    printf -v oct %03o $((96 + sid)); printf -v disk "sd\\$oct"
    printf '%s\n' "$sid $T $P $disk" >>"$N/sessions"
    echo "Logging in to [iface: default, target: $T, portal: ${P%:*},${P##*:}]"
    echo "Login to [iface: default, target: $T, portal: ${P%:*},${P##*:}] successful." ;;
  *" -m node "*" --logout "*)
    has_session "$T" "$P" || EXIT=21 die "iscsiadm: No matching sessions found"
    kept=''
    while read -r sid iqn portal disk; do
      [[ $iqn == "$T" && $portal == "$P" ]] || kept+="$sid $iqn $portal $disk"$'\n'
    done <"$N/sessions"
    printf '%s' "$kept" >"$N/sessions"
    echo "Logout of [sid: ?, target: $T, portal: ${P%:*},${P##*:}] successful." ;;
  *" -m node "*" --rescan "*)
    has_session "$T" "$P" || EXIT=21 die "iscsiadm: No session found." ;;
  *" -m node "*" -o delete "*)
    kept='' found=0
    while IFS= read -r line; do
      if [[ $line == *" $T" ]]; then found=1; else kept+=$line$'\n'; fi
    done <"$N/nodes"
    ((found)) || EXIT=21 die "iscsiadm: No records found"
    printf '%s' "$kept" >"$N/nodes" ;;
  *" -m node "*" -o show "*)
    has_line "$N/discovered" "$P" || EXIT=21 die "iscsiadm: No records found"
    has_line "$N/nodes" "$P,1 $T" || printf '%s\n' "$P,1 $T" >>"$N/nodes"
    echo "node.name = $T"; echo "node.conn[0].address = ${P%:*}" ;;
  " -m node ")
    [[ -s $N/nodes ]] || EXIT=21 die "iscsiadm: No records found"
    slurp out "$N/nodes"; printf '%s' "$out" ;;
  *) die "iscsiadm stand-in: unsupported: $*" ;;
  esac
  ;;
multipath)
  case ${1:-} in
  -ll)
    [[ -s $N/sessions ]] || exit 0
    session_targets
    i=0
    for t in "${targets[@]}"; do
      wwid_of "$t"
      echo "$wwid dm-$i LIO-ORG,${t##*:}"
      echo "size=1.0G features='0' hwhandler='1 alua' wp=rw"
      echo "\`-+- policy='service-time 0' prio=50 status=active"
      while read -r sid iqn portal disk; do
        [[ $iqn == "$t" ]] || continue
        state='active ready running'
        [[ -f $N/failed ]] && has_line "$N/failed" "$disk" && state='failed faulty offline'
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
  session_targets
  if [[ ${1:-} == info && ${2:-} != -* && -n ${2:-} ]]; then
    # one map by name: there while a session of its target is
    for t in "${targets[@]}"; do wwid_of "$t"; [[ $wwid == "$2" ]] && { printf 'Name:              %s\nState:             ACTIVE\n' "$wwid"; exit 0; }; done
    EXIT=1 die "Device does not exist."
  fi
  ((${#targets[@]})) || { echo "No devices found"; exit 0; }
  for t in "${targets[@]}"; do wwid_of "$t"; echo "$wwid 0"; done ;;
udevadm) ;;
*) die "stand-in: unknown tool $name" ;;
esac
exit 0
