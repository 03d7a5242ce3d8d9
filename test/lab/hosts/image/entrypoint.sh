#!/bin/sh
# enssib hosts lab — container entrypoint (PID 1 is docker-init; this execs sshd).
# Host keys are generated at first start, so every container has its own; the
# lab (up.sh) reads them back and writes known_hosts — host-key checking stays on.
set -eu
mkdir -p /run/sshd
chmod 0755 /run/sshd
for t in ed25519 ecdsa; do
  k=/etc/ssh/ssh_host_${t}_key
  [ -s "$k" ] || ssh-keygen -q -t "$t" -N '' -C "root@$(hostname)" -f "$k"
done
exec /usr/sbin/sshd -D -e
