#!/usr/bin/env bash
# Start the hosts lab: one Debian container per inventory host, each running a
# real OpenSSH server published on 127.0.0.1, plus the files a test needs to
# reach them (ssh_config, known_hosts, key, inventory.yaml, hosts.json).
#
#   test/lab/hosts/up.sh [--hosts data1,data2,node01,...] [--workers N] [--state DIR]
#
#   --hosts LIST   comma-separated host names: dataN (master+storage) and nodeNN
#                  (worker); default data1,data2,node01,node02,node03
#   --workers N    shorthand for data1,data2,node01..nodeNN (e.g. --workers 18 → 20 hosts)
#   --state DIR    where the state files go (default /tmp/enssib-lab-hosts)
#
# Idempotent: containers already running from the same image for the same state
# dir are reused (only the state files are rewritten); lab containers for hosts
# not asked for are removed. The state dir is printed as the last stdout line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'up: %s\n' "$*" >&2; }
die() { printf 'up: ERROR: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }

STATE=/tmp/enssib-lab-hosts
HOSTS_ARG=""
WORKERS=""
PAR=${ENSSIB_LAB_PARALLEL:-6}
WAIT=${ENSSIB_LAB_SSH_TIMEOUT:-60}
STANDINS=/opt/enssib-stand-ins/bin

while (($#)); do
  case $1 in
  --hosts) HOSTS_ARG=${2:?--hosts needs a list}; shift 2 ;;
  --hosts=*) HOSTS_ARG=${1#*=}; shift ;;
  --workers) WORKERS=${2:?--workers needs a number}; shift 2 ;;
  --workers=*) WORKERS=${1#*=}; shift ;;
  --state) STATE=${2:?--state needs a directory}; shift 2 ;;
  --state=*) STATE=${1#*=}; shift ;;
  -h | --help) usage 0 ;;
  *) printf 'up: unknown argument: %s\n' "$1" >&2; usage ;;
  esac
done

# ---------------------------------------------------------------- host list
if [[ -n $HOSTS_ARG && -n $WORKERS ]]; then
  die "--hosts and --workers are mutually exclusive"
fi
hosts=()
if [[ -n $WORKERS ]]; then
  if ! [[ $WORKERS =~ ^[0-9]+$ ]] || ((10#$WORKERS < 1 || 10#$WORKERS > 99)); then
    die "--workers must be a number from 1 to 99 (got '$WORKERS')"
  fi
  hosts=(data1 data2)
  for ((i = 1; i <= 10#$WORKERS; i++)); do hosts+=("$(printf 'node%02d' "$i")"); done
elif [[ -n $HOSTS_ARG ]]; then
  IFS=, read -r -a hosts <<<"$HOSTS_ARG"
else
  hosts=(data1 data2 node01 node02 node03)
fi
((${#hosts[@]})) || die "no hosts"

# Site address, roles and pod subnet of each host (the inventory keeps the
# reference site's addresses; ssh reaches the containers through ssh_config).
declare -A seen=() addr=() roles=() podsub=()
for h in "${hosts[@]}"; do
  [[ -z ${seen[$h]:-} ]] || die "host $h given twice"
  seen[$h]=1
  if [[ $h =~ ^data([0-9]+)$ ]]; then
    n=$((10#${BASH_REMATCH[1]}))
    ((n >= 1 && n <= 9)) || die "storage host $h: expected data1..data9"
    addr[$h]="10.66.6.$n"
    roles[$h]="[master, storage]"
  elif [[ $h =~ ^node([0-9]{2,})$ ]]; then
    n=$((10#${BASH_REMATCH[1]}))
    ((n >= 1 && n <= 99)) || die "worker $h: expected node01..node99"
    addr[$h]="10.66.6.$((10 + n))"
    roles[$h]="[worker]"
    podsub[$h]="10.100.$n.0/24"
  else
    die "host name '$h' is neither dataN (master+storage) nor nodeNN (worker)"
  fi
done

# ---------------------------------------------------------------- prerequisites
for c in docker ssh ssh-keygen ssh-keyscan flock ip; do
  command -v "$c" >/dev/null || die "'$c' is not installed"
done
[[ $STATE == /* ]] || STATE="$PWD/$STATE"
[[ $STATE =~ ^/[A-Za-z0-9._/-]+$ ]] || die "state dir '$STATE': use only letters, digits, . _ - /"
[[ $STATE != / ]] || die "state dir cannot be /"

start=$SECONDS
t_phase=$EPOCHREALTIME
timings=""
phase() { # record how long the previous phase took
  local now=$EPOCHREALTIME
  timings+="${timings:+, }$1 $(awk -v a="$t_phase" -v b="$now" 'BEGIN { printf "%.1fs", b - a }')"
  t_phase=$now
}
"$here/safety-net.sh"
"$here/ensure-docker.sh"
tag=$("$here/build-image.sh" | tail -n 1)
[[ $tag == enssib-lab-host:* ]] || die "build-image.sh did not print an image tag"
phase "engine+image"

exec 8>/run/enssib-lab-hosts.lock
flock -w 300 8 || die "another up.sh/down.sh holds /run/enssib-lab-hosts.lock"

if [[ -e $STATE && ! -e $STATE/.enssib-lab-hosts ]] && [[ -n $(ls -A "$STATE" 2>/dev/null) ]]; then
  die "$STATE exists, is not empty and is not a hosts-lab state dir; choose another --state"
fi
mkdir -p "$STATE" "$STATE/stand-ins/bin"
STATE=$(cd "$STATE" && pwd -P)
chmod 0755 "$STATE" "$STATE/stand-ins" "$STATE/stand-ins/bin"
printf 'enssib hosts lab state dir (test/lab/hosts/up.sh); removed by down.sh\n' >"$STATE/.enssib-lab-hosts"
if [[ ! -s $STATE/id_ed25519 || ! -s $STATE/id_ed25519.pub ]]; then
  rm -f "$STATE/id_ed25519" "$STATE/id_ed25519.pub"
  ssh-keygen -q -t ed25519 -N '' -C "enssib-lab@$(hostname)" -f "$STATE/id_ed25519"
  log "generated $STATE/id_ed25519"
fi
standins_id=$(stat -c '%d:%i' "$STATE/stand-ins/bin")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Run "$fn host" for every host, $PAR at a time; print the logs of failures.
for_each_host() {
  local fn=$1 i j rc=0
  local -a pids
  for ((i = 0; i < ${#hosts[@]}; i += PAR)); do
    pids=()
    for ((j = i; j < i + PAR && j < ${#hosts[@]}; j++)); do
      "$fn" "${hosts[j]}" >"$tmp/$fn.${hosts[j]}.log" 2>&1 &
      pids+=("$!")
    done
    for ((j = 0; j < ${#pids[@]}; j++)); do
      if ! wait "${pids[j]}"; then
        rc=1
        printf 'up: %s failed for %s:\n' "$fn" "${hosts[i + j]}" >&2
        sed 's/^/    /' "$tmp/$fn.${hosts[i + j]}.log" >&2
      fi
    done
  done
  return "$rc"
}

# ---------------------------------------------------------------- containers
# Remove lab containers for hosts not asked for.
declare -A wanted=()
for h in "${hosts[@]}"; do wanted["enssib-lab-$h"]=1; done
extra=()
while read -r name; do
  if [[ -n $name && -z ${wanted[$name]:-} ]]; then extra+=("$name"); fi
done < <(docker ps -a --filter label=enssib-lab=hosts --format '{{.Names}}')
if ((${#extra[@]})); then
  mapfile -t paused < <(docker ps -q --filter label=enssib-lab=hosts --filter status=paused)
  ((${#paused[@]} == 0)) || docker unpause "${paused[@]}" >/dev/null || true
  docker rm -f "${extra[@]}" >/dev/null
  log "removed ${#extra[@]} container(s) not in this lab: ${extra[*]}"
fi

ensure_container() {
  local h=$1 c="enssib-lab-$1" info
  info=$(docker inspect -f '{{.Config.Image}}|{{.State.Running}}|{{.State.Paused}}|{{index .Config.Labels "enssib-lab.state"}}|{{index .Config.Labels "enssib-lab.stand-ins"}}' "$c" 2>/dev/null || true)
  if [[ -n $info ]]; then
    local image running paused state sid
    IFS='|' read -r image running paused state sid <<<"$info"
    if [[ $image == "$tag" && $running == true && $state == "$STATE" && $sid == "$standins_id" ]]; then
      if [[ $paused == true ]]; then docker unpause "$c" >/dev/null; echo "unpaused"; else echo "reused"; fi
      return 0
    fi
    docker rm -f "$c" >/dev/null
  fi
  docker run -d --name "$c" --hostname "$h" \
    --label enssib-lab=hosts --label "enssib-lab.host=$h" \
    --label "enssib-lab.state=$STATE" --label "enssib-lab.stand-ins=$standins_id" \
    --init --stop-timeout 2 \
    --publish 127.0.0.1::22 \
    --volume "$STATE/stand-ins/bin:$STANDINS:ro" \
    "$tag" >/dev/null
  echo "created"
}
for_each_host ensure_container || die "could not start every container"
declare -A action=()
for h in "${hosts[@]}"; do action[$h]=$(tail -n 1 "$tmp/ensure_container.$h.log"); done
phase containers

# ---------------------------------------------------------------- ssh readiness
deadline=$((SECONDS + WAIT))
# Wait for sshd (ssh-keyscan), install the lab key for root/admin/nosudo, and
# check that the scanned host keys are the ones the container holds.
prepare_host() {
  local h=$1 c="enssib-lab-$1" port scanned held
  port=$(docker port "$c" 22/tcp | sed -n 's/^127\.0\.0\.1:\([0-9]\+\)$/\1/p')
  port=${port%%$'\n'*}
  [[ -n $port ]] || { echo "no port published on 127.0.0.1 for $c"; return 1; }
  echo "$port" >"$tmp/$h.port"
  while :; do
    scanned=$(ssh-keyscan -T 3 -t ed25519,ecdsa -p "$port" 127.0.0.1 2>/dev/null || true)
    # both key types, or scan again: under load one of the two scans can time out
    [[ $(grep -c . <<<"$scanned") -lt 2 ]] || break
    if ((SECONDS >= deadline)); then
      echo "sshd in $c (127.0.0.1:$port) did not answer within ${WAIT}s; docker logs:"
      docker logs --tail 20 "$c" 2>&1
      return 1
    fi
    [[ $(docker inspect -f '{{.State.Running}}' "$c") == true ]] || { echo "$c stopped:"; docker logs --tail 20 "$c" 2>&1; return 1; }
    sleep 0.3
  done
  held=$(docker exec -i "$c" sh -eu -c '
    pub=$(cat)
    for u in root admin nosudo; do
      home=$(getent passwd "$u" | cut -d: -f6)
      install -d -m 0700 -o "$u" -g "$u" "$home/.ssh"
      printf "%s\n" "$pub" >"$home/.ssh/authorized_keys.new"
      chown "$u:$u" "$home/.ssh/authorized_keys.new"
      chmod 0600 "$home/.ssh/authorized_keys.new"
      mv -f "$home/.ssh/authorized_keys.new" "$home/.ssh/authorized_keys"
    done
    cat /etc/ssh/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ecdsa_key.pub' <"$STATE/id_ed25519.pub")
  if [[ $(awk '{ print $2, $3 }' <<<"$scanned" | sort) != $(awk '{ print $1, $2 }' <<<"$held" | sort) ]]; then
    echo "the host keys served on 127.0.0.1:$port are not those of $c"
    return 1
  fi
  awk -v p="$port" '{ print "[127.0.0.1]:" p, $1, $2 }' <<<"$held" >"$tmp/$h.known"
}
PAR=$((PAR * 2)) for_each_host prepare_host || die "the lab's sshd servers are not all reachable"
phase "sshd+keys"

# ---------------------------------------------------------------- state files
write() { # write FILE: atomically replace FILE with stdin
  cat >"$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"
}

for h in "${hosts[@]}"; do cat "$tmp/$h.known"; done | write "$STATE/known_hosts"
chmod 0644 "$STATE/known_hosts"

{
  printf '# Generated by test/lab/hosts/up.sh — the hosts lab. Use: ssh -F %s/ssh_config data1\n' "$STATE"
  for h in "${hosts[@]}"; do
    printf '\nHost %s\n' "$h"
    printf '  HostName 127.0.0.1\n  Port %s\n  User root\n' "$(<"$tmp/$h.port")"
    printf '  IdentityFile %s/id_ed25519\n  IdentitiesOnly yes\n' "$STATE"
    printf '  UserKnownHostsFile %s/known_hosts\n  StrictHostKeyChecking yes\n' "$STATE"
  done
  printf '\nHost *\n  BatchMode yes\n'
} | write "$STATE/ssh_config"

{
  printf '[\n'
  for ((i = 0; i < ${#hosts[@]}; i++)); do
    h=${hosts[i]}
    printf '  {"name":"%s","port":%s,"container":"enssib-lab-%s"}%s\n' \
      "$h" "$(<"$tmp/$h.port")" "$h" "$( ((i + 1 < ${#hosts[@]})) && echo ,)"
  done
  printf ']\n'
} | write "$STATE/hosts.json"

storage_hosts=()
for h in "${hosts[@]}"; do
  if [[ ${roles[$h]} == *storage* ]]; then storage_hosts+=("$h"); fi
done
if ((${#storage_hosts[@]})); then
  metadata_host=${storage_hosts[0]}
  portals=""
  for h in "${storage_hosts[@]}"; do portals+="${portals:+, }${addr[$h]}:3260"; done
else
  log "warning: no storage host (dataN) in this lab; the inventory keeps data1/data2 as storage references"
  metadata_host=data1
  portals="10.66.6.1:3260, 10.66.6.2:3260"
fi

{
  cat <<EOF
# Generated by test/lab/hosts/up.sh — the hosts lab (containers with OpenSSH).
site: enssib-lab
ssh:
  config: $STATE/ssh_config
  knownHosts: $STATE/known_hosts
  connectTimeout: 5
networks:
  pods: 10.100.0.0/16
  services: 10.101.0.0/23
  cluster: { cidr: 10.66.6.0/24, mtu: 9000 }
  users: 192.168.66.0/26
hosts:
EOF
  for h in "${hosts[@]}"; do
    printf '  - { name: %s, address: %s, roles: %s, %sssh: { host: %s } }\n' \
      "$h" "${addr[$h]}" "${roles[$h]}" "${podsub[$h]:+podSubnet: ${podsub[$h]}, }" "$h"
  done
  cat <<EOF
registry: { host: registry.cluster.enssib.fr:5000, ca: certs/enssib-ca.crt }
kubernetes: { api: https://api.cluster.enssib.fr:6443 }
storage:
  volumeGroup: vg_cluster
  drbdResource: r0
  metadataHost: $metadata_host
  iqnPrefix: iqn.2016-04.fr.enssib
  portals: [$portals]
  targetDriver: scst
nfs: { vip: 10.66.6.10 }
keepalivedVip: { configMap: vip-configmap, namespace: kube-system }
backup: { destination: /srv/backup, retention: { daily: 7, weekly: 4 } }
journal: $STATE/journal.jsonl
EOF
} | write "$STATE/inventory.yaml"

# ---------------------------------------------------------------- final check
check_ssh() {
  ssh -F "$STATE/ssh_config" -o ConnectTimeout=10 "$1" true
}
PAR=$((PAR * 2)) for_each_host check_ssh || die "ssh through $STATE/ssh_config failed (see above)"
phase "ssh check"

summary=""
for h in "${hosts[@]}"; do summary+=" $h:$(<"$tmp/$h.port")(${action[$h]})"; done
log "hosts:$summary"
log "lab up in $((SECONDS - start))s — ${#hosts[@]} hosts, image $tag ($timings)"
log "  ssh -F $STATE/ssh_config data1        inventory: $STATE/inventory.yaml"
log "  stand-ins: drop executables in $STATE/stand-ins/bin (first on PATH on every host as $STANDINS)"
printf '%s\n' "$STATE"
