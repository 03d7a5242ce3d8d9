#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2016 # "a && pass || fail" is intended (pass/fail never fail); remote $vars stay single-quoted
# Check a running hosts lab (start it with up.sh first):
#
#   test/lab/hosts/selftest.sh [--state DIR]
#
# Verifies, through the generated ssh_config only: root login on every host,
# host-key checking is really on, admin's `sudo -n` works and nosudo's fails
# clearly, the stand-ins dir leads PATH (root, admin, admin under sudo -n), a
# stand-in dropped in <state>/stand-ins/bin runs on the hosts, and a paused
# container makes ssh hang until ConnectTimeout. Exit 0 only if all pass.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=/tmp/enssib-lab-hosts
while (($#)); do
  case $1 in
  --state) STATE=${2:?}; shift 2 ;;
  --state=*) STATE=${1#*=}; shift ;;
  *) echo "selftest: unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -s $STATE/hosts.json && -s $STATE/ssh_config ]] || { echo "selftest: no lab in $STATE (run up.sh)" >&2; exit 1; }

STANDINS=/opt/enssib-stand-ins/bin
fails=0
pass() { printf '  ok    %s\n' "$*"; }
fail() { printf '  FAIL  %s\n' "$*"; fails=$((fails + 1)); }
s() { ssh -F "$STATE/ssh_config" -o ConnectTimeout=10 "$@"; }

mapfile -t hosts < <(sed -n 's/.*"name":"\([^"]*\)".*/\1/p' "$STATE/hosts.json")
first=${hosts[0]}
victim=${hosts[${#hosts[@]} - 1]}
echo "selftest: ${#hosts[@]} hosts in $STATE"

"$here/safety-net.sh" --check && pass "blackhole routes for the site networks are in place" || fail "blackhole routes missing"

for h in "${hosts[@]}"; do
  out=$(s "$h" 'echo "$(hostname) $(id -un)"' 2>&1) && [[ $out == "$h root" ]] &&
    pass "ssh $h as root" || fail "ssh $h as root: $out"
done

out=$(ssh -F "$STATE/ssh_config" -o UserKnownHostsFile=/dev/null "$first" true 2>&1) &&
  fail "ssh with an empty known_hosts succeeded: host-key checking is off" ||
  { [[ $out == *"Host key verification failed"* ]] && pass "host-key checking is on (empty known_hosts refused)" ||
    fail "unexpected error with an empty known_hosts: $out"; }

s -l admin "$first" 'sudo -n true' && pass "admin: sudo -n true" || fail "admin: sudo -n true"
out=$(s -l nosudo "$first" 'sudo -n true' 2>&1) && fail "nosudo: sudo -n succeeded" ||
  { [[ $out == *"password is required"* ]] && pass "nosudo: sudo -n fails ($out)" || fail "nosudo: unexpected: $out"; }

for who in "root:" "admin:" "admin:sudo -n "; do
  user=${who%%:*} pre=${who#*:}
  out=$(s -l "$user" "$first" "${pre}sh -c 'echo \$PATH'" 2>&1) || true
  [[ $out == "$STANDINS:"* ]] && pass "PATH for $user${pre:+ under ${pre% }} starts with $STANDINS" ||
    fail "PATH for $user${pre:+ under ${pre% }}: $out"
done

probe="$STATE/stand-ins/bin/enssib-selftest-probe"
cat >"$probe" <<'EOF'
#!/bin/sh
printf '%s %s\n' "$(basename "$0")" "$*" >>/var/log/enssib-stand-ins.log
echo "probe ran as $(id -un) on $(hostname)"
EOF
chmod 0755 "$probe"
out=$(s -l admin "$first" 'sudo -n enssib-selftest-probe a "b c" && tail -n 1 /var/log/enssib-stand-ins.log' 2>&1) || true
rm -f "$probe"
[[ $out == "probe ran as root on $first"$'\n'"enssib-selftest-probe a b c" ]] &&
  pass "stand-in from $STATE/stand-ins/bin runs under sudo and logs its argv" || fail "stand-in: $out"

c="enssib-lab-$victim"
docker pause "$c" >/dev/null
t0=$SECONDS
timeout 6 ssh -F "$STATE/ssh_config" "$victim" true >/dev/null 2>&1 && rc=0 || rc=$?
[[ $rc == 124 ]] && pass "paused $victim: plain ssh hangs (killed after 6s)" || fail "paused $victim: ssh returned $rc"
t0=$SECONDS
out=$(ssh -F "$STATE/ssh_config" -o ConnectTimeout=3 "$victim" true 2>&1) && rc=0 || rc=$?
out=${out//$'\n'/; }
[[ $rc == 255 && $out == *"timed out"* ]] && pass "paused $victim: ConnectTimeout=3 gives up after $((SECONDS - t0))s ($out)" ||
  fail "paused $victim: ConnectTimeout: rc=$rc $out"
docker unpause "$c" >/dev/null
s "$victim" true && pass "unpaused $victim answers again" || fail "unpaused $victim does not answer"

if ((fails)); then
  echo "selftest: $fails check(s) FAILED"
  exit 1
fi
echo "selftest: all checks passed"
