#!/bin/sh
# Hosts-lab STAND-IN for systemctl: the containers run no systemd. It records
# its calls and keeps "enable" in a file; is-active says inactive (so
# systemd-networkd manages nothing here, as on an ifupdown host).
d=/var/lib/enssib-stand-in/systemctl
mkdir -p "$d"
printf '%s\n' "$*" >>"$d/calls"
[ "$1" = --quiet ] && shift
case $1 in
enable) touch "$d/$2.enabled" ;;
is-enabled) if [ -e "$d/$2.enabled" ]; then echo enabled; else echo disabled; exit 1; fi ;;
is-active) [ "$2" = --quiet ] || echo inactive; exit 3 ;;
daemon-reload) ;;
*) echo "systemctl stand-in: $1 is not simulated" >&2; exit 1 ;;
esac
