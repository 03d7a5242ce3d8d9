#!/bin/sh
# STAND-IN for util-linux fsfreeze on the hosts lab (a container cannot freeze
# a filesystem): `fsfreeze -f|-u [--] MOUNTPOINT` keeps each mount point's
# state in /var/lib/enssib-stand-in/fsfreeze/ and appends
# "<epoch ms> <-f|-u> <mount point> <result>" to /var/log/enssib-fsfreeze.log.
# Exit codes as the real one: 1 for a freeze of a frozen filesystem ("Device or
# resource busy") or a thaw of one that is not frozen ("Invalid argument").
set -u
op=${1:-}
[ "${2:-}" = -- ] && shift
mp=${2:-}
case $op in -f|-u) ;; *) echo "fsfreeze: stand-in: usage: fsfreeze -f|-u MOUNTPOINT" >&2; exit 1 ;; esac
[ -d "$mp" ] || { echo "fsfreeze: cannot open $mp: No such file or directory" >&2; exit 1; }
d=/var/lib/enssib-stand-in/fsfreeze
mkdir -p "$d"
f=$d/$(printf %s "$mp" | tr / _)
now=$(date +%s%3N)
if [ "$op" = -f ]; then
  if [ -e "$f" ]; then echo "$now -f $mp busy" >>/var/log/enssib-fsfreeze.log; echo "fsfreeze: $mp: freeze failed: Device or resource busy" >&2; exit 1; fi
  : >"$f"
else
  if [ ! -e "$f" ]; then echo "$now -u $mp not-frozen" >>/var/log/enssib-fsfreeze.log; echo "fsfreeze: $mp: thaw failed: Invalid argument" >&2; exit 1; fi
  rm -f "$f"
fi
echo "$now $op $mp ok" >>/var/log/enssib-fsfreeze.log
