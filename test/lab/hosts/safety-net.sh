#!/usr/bin/env bash
# Safety net for the labs: blackhole routes for the reference site's networks,
# so that nothing on this machine (nor a lab container, whose traffic is routed
# by this machine) can reach a real enssib host by mistake. Idempotent.
#
#   test/lab/hosts/safety-net.sh          add the routes (root)
#   test/lab/hosts/safety-net.sh --check  only verify they are in place
set -euo pipefail

NETS=(10.66.6.0/24 10.100.0.0/16 10.101.0.0/23 192.168.66.0/26)

die() { printf 'safety-net: ERROR: %s\n' "$*" >&2; exit 1; }

check() {
  local n missing=0
  for n in "${NETS[@]}"; do
    [[ -n $(ip route show type blackhole "$n") ]] || { printf 'safety-net: no blackhole route for %s\n' "$n" >&2; missing=1; }
  done
  return "$missing"
}

if [[ ${1:-} == --check ]]; then
  check
  exit
fi

for n in "${NETS[@]}"; do
  ip route replace blackhole "$n" 2>/dev/null ||
    die "cannot add the blackhole route for $n (need root / CAP_NET_ADMIN); refusing to start the lab without it"
done
check || die "blackhole routes are not in place"
