#!/usr/bin/env bash
# Start the images lab: Debian's docker-registry with TLS (a CA this script makes)
# and basic auth (htpasswd), on an address outside loopback, under a name in /etc/hosts.
#
#   test/lab/registry/up.sh STATE_DIR
#
# Three registry instances share one storage-less set-up:
#   main       certificate signed by the lab CA; the engine trusts it through
#              /etc/docker/certs.d/<name>:<port>/ca.crt
#   rogue      certificate signed by another CA ("a certificate the CA does not sign")
#   untrusted  certificate signed by the lab CA, but no certs.d entry for the engine
#              (enssib trusts it, the engine refuses it)
# plus a local base image with /bin/sh (dash and its libraries) for RUN steps.
#
# Writes STATE_DIR/state.json (read by test/support/setup-registry.ts and the
# benchmarks) and STATE_DIR/inventory.yaml. Undo everything with down.sh STATE_DIR.
#
# Needs: root, docker.io (engine running: test/lab/hosts/ensure-docker.sh),
# docker-registry, openssl, apache2-utils (htpasswd), curl, iproute2.
#
# Environment:
#   ENSSIB_REGISTRY_NAME  host name (default registry.enssib.test)
#   ENSSIB_REGISTRY_ADDR  address to listen on (default: the docker0 bridge address)
set -euo pipefail

log() { printf 'registry-lab: %s\n' "$*" >&2; }
die() { printf 'registry-lab: ERROR: %s\n' "$*" >&2; exit 1; }

STATE=${1:?usage: up.sh STATE_DIR}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NAME=${ENSSIB_REGISTRY_NAME:-registry.enssib.test}
REGISTRY_BIN=${ENSSIB_REGISTRY_BIN:-/usr/bin/docker-registry}
USER_NAME=enssib-test
BASE_IMAGE=enssib-test/sh:1
MARK="# enssib-registry-lab $STATE"

[[ $(id -u) -eq 0 ]] || die "needs root (writes /etc/hosts and /etc/docker/certs.d)"
[[ -x $REGISTRY_BIN ]] || die "$REGISTRY_BIN not found: apt-get install -y docker-registry"
for t in openssl htpasswd curl ip ss docker; do command -v "$t" >/dev/null || die "$t not found"; done

"$HERE/../hosts/ensure-docker.sh" || die "no Docker engine (test/lab/hosts/ensure-docker.sh failed)"

ADDR=${ENSSIB_REGISTRY_ADDR:-$(ip -4 -o addr show dev docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n1)}
[[ -n $ADDR ]] || die "no docker0 bridge address; set ENSSIB_REGISTRY_ADDR to a non-loopback address of this machine"
[[ $ADDR == 127.* ]] && die "$ADDR is loopback: the engine would skip TLS checks there"

mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
MARK="# enssib-registry-lab $STATE"
cd "$STATE"
printf '%s\n' "$STATE" >.lab-marker
# What this run adds outside STATE_DIR, recorded before it is added, so that
# down.sh can remove it even after a failed start.
: >added
trap 'rc=$?; if ((rc != 0)); then log "start failed; cleaning up"; "$HERE/down.sh" "$STATE" --keep-state; fi' EXIT

# --- certificates ------------------------------------------------------------
make_ca() { # dir subject
  mkdir -p "$1"
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$1/ca.key" -out "$1/ca.crt" 2>/dev/null
}
make_server() { # cadir outdir
  mkdir -p "$2"
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$NAME" -keyout "$2/server.key" -out "$2/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$NAME" >"$2/ext.cnf"
  openssl x509 -req -in "$2/server.csr" -CA "$1/ca.crt" -CAkey "$1/ca.key" -CAcreateserial -days 30 -sha256 \
    -extfile "$2/ext.cnf" -out "$2/server.crt" 2>/dev/null
  rm -f "$2/server.csr"
}
make_ca ca "enssib test registry CA"
make_ca rogue-ca "some other CA"
make_server ca tls
make_server rogue-ca rogue-tls

# --- credentials -------------------------------------------------------------
PASSWORD=$(openssl rand -hex 16)
printf '%s\n' "$PASSWORD" >password
chmod 600 password
printf '%s\n' "$PASSWORD" | htpasswd -iBn "$USER_NAME" >users.htpasswd 2>/dev/null

# --- ports -------------------------------------------------------------------
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 20000))
    if [[ -z $(ss -Htln "sport = :$p") ]] && ! grep -qx "$p" ports.taken 2>/dev/null; then
      echo "$p" >>ports.taken
      echo "$p"
      return 0
    fi
  done
  die "no free port"
}
: >ports.taken
MAIN_PORT=$(free_port)
ROGUE_PORT=$(free_port)
UNTRUSTED_PORT=$(free_port)
DEBUG_PORTS=("$(free_port)" "$(free_port)" "$(free_port)")

# --- /etc/hosts and the engine's CA --------------------------------------------
# /etc/hosts may be a bind mount: rewrite it in place, never rename over it.
for p in "$MAIN_PORT" "$ROGUE_PORT" "$UNTRUSTED_PORT"; do echo "certs $NAME:$p" >>added; done
echo "hosts" >>added
if ! grep -qF "$MARK" /etc/hosts; then
  printf '%s %s %s\n' "$ADDR" "$NAME" "$MARK" >>/etc/hosts
fi
mkdir -p "/etc/docker/certs.d/$NAME:$MAIN_PORT"
cp ca/ca.crt "/etc/docker/certs.d/$NAME:$MAIN_PORT/ca.crt"
# The rogue instance: the engine is told to trust the lab CA, which did not sign it.
mkdir -p "/etc/docker/certs.d/$NAME:$ROGUE_PORT"
cp ca/ca.crt "/etc/docker/certs.d/$NAME:$ROGUE_PORT/ca.crt"

# --- registries --------------------------------------------------------------
start_registry() { # label port tlsdir debugport
  local dir=$STATE/$1
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $ADDR:$2
  tls:
    certificate: $STATE/$3/server.crt
    key: $STATE/$3/server.key
  debug:
    addr: 127.0.0.1:$4
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: enssib-test
    path: $STATE/users.htpasswd
YAML
  setsid nohup "$REGISTRY_BIN" serve "$dir/config.yml" </dev/null >"$dir/registry.log" 2>&1 &
  echo $! >"$dir/pid"
  echo "registry $1" >>"$STATE/added"
}
start_registry main "$MAIN_PORT" tls "${DEBUG_PORTS[0]}"
start_registry rogue "$ROGUE_PORT" rogue-tls "${DEBUG_PORTS[1]}"
start_registry untrusted "$UNTRUSTED_PORT" tls "${DEBUG_PORTS[2]}"

wait_up() { # label port cafile
  local deadline=$((SECONDS + 30)) code
  while ((SECONDS < deadline)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$3" "https://$NAME:$2/v2/" || true)
    [[ $code == 401 ]] && return 0
    [[ -d /proc/$(cat "$STATE/$1/pid") ]] || { tail -n 20 "$STATE/$1/registry.log" >&2; die "registry $1 exited"; }
    sleep 0.3
  done
  tail -n 20 "$STATE/$1/registry.log" >&2
  die "registry $1 on $NAME:$2 did not answer within 30 s"
}
wait_up main "$MAIN_PORT" ca/ca.crt
wait_up rogue "$ROGUE_PORT" rogue-ca/ca.crt
wait_up untrusted "$UNTRUSTED_PORT" ca/ca.crt

# --- a base image with /bin/sh (no image can be pulled here) -------------------
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  root=$STATE/rootfs
  mkdir -p "$root/bin" "$root/tmp" "$root/etc"
  cp /bin/dash "$root/bin/sh"
  ldd /bin/dash | awk '/=>/ {print $3} !/=>/ && /^[ \t]*\// {print $1}' | while read -r lib; do
    [[ -f $lib ]] || continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  printf 'root:x:0:0:root:/:/bin/sh\n' >"$root/etc/passwd"
  tar -C "$root" -cf base.tar .
  echo "image $BASE_IMAGE" >>added
  docker import base.tar "$BASE_IMAGE" >/dev/null
  rm -rf "$root" base.tar
fi

# --- the test inventory ------------------------------------------------------
cat >inventory.yaml <<YAML
# Written by test/lab/registry/up.sh: the images lab. Hosts are never contacted.
site: enssib-test
networks:
  pods: 10.100.0.0/16
  services: 10.101.0.0/23
  cluster: { cidr: 127.66.6.0/24, mtu: 9000 }
hosts:
  - { name: data1, address: 127.66.6.1, roles: [master, storage] }
registry:
  host: $NAME:$MAIN_PORT
  ca: $STATE/ca/ca.crt
  auth: { username: $USER_NAME, passwordFile: $STATE/password }
kubernetes:
  api: https://127.0.0.1:6443
storage:
  volumeGroup: vg_test
  drbdResource: r0
  metadataHost: data1
  iqnPrefix: iqn.2016-04.fr.enssib
  portals: [127.66.6.1:3260]
  targetDriver: lio
journal: $STATE/journal.jsonl
YAML

cat >state.json <<JSON
{
  "dir": "$STATE",
  "name": "$NAME",
  "address": "$ADDR",
  "host": "$NAME:$MAIN_PORT",
  "port": $MAIN_PORT,
  "roguePort": $ROGUE_PORT,
  "untrustedPort": $UNTRUSTED_PORT,
  "caFile": "$STATE/ca/ca.crt",
  "rogueCaFile": "$STATE/rogue-ca/ca.crt",
  "username": "$USER_NAME",
  "passwordFile": "$STATE/password",
  "inventory": "$STATE/inventory.yaml",
  "baseImage": "$BASE_IMAGE"
}
JSON
log "registry https://$NAME:$MAIN_PORT (also rogue :$ROGUE_PORT, untrusted :$UNTRUSTED_PORT) on $ADDR; state in $STATE"
