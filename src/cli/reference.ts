import { SIZE_HELP } from '../validate.js';
import { COMMANDS } from './commands.js';
import { EXIT_CODES, wrap } from './exit-codes.js';

/**
 * The reference text of enssib — commands, exit codes, inventory fields,
 * hazards, sizes — as data. `--help`, `enssib help <topic>` and the README's
 * tables are all rendered from here (a test checks that the README agrees).
 */

/** Commands that are not in the command table (they need the program itself). */
export const BUILTIN_COMMANDS: { usage: string; summary: string }[] = [
  { usage: 'enssib completion bash|zsh', summary: 'shell completion: commands, options and their values (hosts, services, volumes, formats, files)' },
  { usage: 'enssib help [command|topic]', summary: `help on a command, or a topic: ${['exit-codes', 'inventory', 'hazards', 'sizes'].join(', ')}` },
];

export function commandUsage(path: string[], args: { syntax: string }[] = []): string {
  return ['enssib', ...path, ...args.map((a) => a.syntax)].join(' ');
}

/** One row per command: usage and summary, in the table's order. */
export function commandRows(): { usage: string; summary: string }[] {
  return [...COMMANDS.map((c) => ({ usage: commandUsage(c.path, c.args), summary: c.summary })), ...BUILTIN_COMMANDS];
}

export const INVENTORY_FIELDS: { field: string; meaning: string }[] = [
  { field: 'site', meaning: 'a name for the cluster' },
  {
    field: 'ssh.config, ssh.knownHosts',
    meaning:
      'an ssh config (`-F`) and known_hosts file; also `ENSSIB_SSH_CONFIG`, `ENSSIB_SSH_KNOWN_HOSTS`. Without them ssh reads `~/.ssh/config` and known_hosts as usual (agent, ProxyJump honoured). Host-key checking is never turned off: enssib passes `StrictHostKeyChecking=yes` over any config, so a host whose key is not in known_hosts, or differs from it, is refused (exit 1) and known_hosts is never written — add a new worker\'s key after checking its fingerprint',
  },
  { field: 'ssh.user', meaning: 'ssh user for every host; anything but root runs commands through `sudo -n` (passwordless sudo required — never a password prompt)' },
  { field: 'ssh.connectTimeout, ssh.commandTimeout, ssh.controlPersist', meaning: 'seconds (defaults 10, 300, 60)' },
  { field: 'networks.pods, networks.services', meaning: 'CIDRs (10.100.0.0/16, 10.101.0.0/23)' },
  { field: 'networks.cluster', meaning: '`{ cidr, mtu }` — the unrouted cluster network and its MTU (9000)' },
  { field: 'networks.users', meaning: "the routed users' network" },
  {
    field: 'hosts[]',
    meaning:
      '`name` (DNS label), `address` (cluster address, inside `networks.cluster`), `roles` (`master`, `storage`, `worker`), `podSubnet` (workers only: exactly a /24 of the pods network, no overlap), `labels` (workers: Kubernetes labels, `{ disk: ssd }`) and `taints` (workers: `key=value:NoSchedule`), set on the node by `enssib node bootstrap`, `ssh: { host, port, user }` where ssh reaches the host another way (an alias, a forwarded port)',
  },
  {
    field: 'registry',
    meaning: '`host` (`name:port`, the port is required), `ca` (CA file of the registry\'s certificate), `auth: { username, passwordFile }` (else `~/.docker/config.json`; the password file must not be world-readable); the credentials go to a token service only on the registry\'s host, or over https on a host the inventory names, and never to a Docker engine over plain TCP (`DOCKER_HOST=tcp://…:2375`) unless `--allow-insecure-engine`',
  },
  { field: 'kubernetes', meaning: "`api` (URL: the kubeconfig context's server must be this one, or every Kubernetes command refuses, naming both), `kubeconfig`, `context`, `namespace`" },
  {
    field: 'storage',
    meaning:
      '`volumeGroup`, `drbdResource`, `metadataHost` (the storage server where LVM metadata changes are made and the storage lock lives), `iqnPrefix`, `portals` (`address:port` of storage servers), `targetDriver` (`scst` or `lio`), `lockFile` (default `/run/enssib/storage.lock`; its directory must be writable by root only)',
  },
  { field: 'nfs.vip', meaning: "the keepalived virtual IP of NFS; every worker's default route goes through it unless `nodes.gateway` names another address (`enssib doctor` checks it)" },
  { field: 'nfs.protocol', meaning: "`tcp` (default) or `udp`: the transport NFS mounts use (Debian 12's kernel cannot mount NFS over UDP)" },
  {
    field: 'nodes',
    meaning:
      "what `enssib node bootstrap` needs: `interface` (the workers' cluster network interface: MTU, default route, pod routes), `gateway` (every worker's default route, the keepalived-vip host; default `nfs.vip`), `minimum: { memory, cpus }` (refused below, e.g. `{ memory: 4G, cpus: 2 }`), `apt: { url, suite, components, key }` (the apt repository of kubelet and kubeadm — suite default `/` as pkgs.k8s.io has it — and its signing key file, installed in `/etc/apt/keyrings/enssib-kubernetes.gpg`), `maxClockSkew` (seconds, default 2)",
  },
  { field: 'keepalivedVip', meaning: '`{ configMap, namespace }` of the keepalived-vip ConfigMap' },
  {
    field: 'backup',
    meaning:
      '`destination` (an absolute folder on the metadata storage server, or `ssh://[user@]host[:port]/folder` on a backup host reached over ssh from it with the storage server\'s root key, host key checked: images `<volume>/<id>.img.zst` and their catalogue records `<id>.json`; see docs/backup.md), `snapshotSize` (copy-on-write size of each snapshot: a share of the volume such as `20%`, the default, or a size such as `10G`), `retention: { daily, weekly, monthly }` (what `backup prune` keeps per volume: the newest backup of each of the last N days, ISO weeks, months), `maxSinglePath` (how long a volume may run on one path during its backup — the other server\'s export offline while its snapshot exists — before the summary warns: `2h`, the default, `90m`, `45s`), `method` (`image`, the default: a zstd image per backup; `borg`: `borg create` of the snapshot into the deduplicated, encrypted repository `<destination>/borg`, borgbackup needed on the storage servers and the backup host), `borg: { passphraseFile }` (required with `method: borg`: an absolute path to a root-only file on the metadata storage server holding the repository\'s passphrase, read by borg itself — never on a command line)',
  },
  { field: 'journal', meaning: 'the JSON-lines journal file: one record per real run that changes something (time, user, argv, plan, per-host outcome); read it with `enssib journal`' },
];

export const INVENTORY_NOTES = [
  "Relative paths are relative to the inventory's folder; `~/` is the home folder.",
  '`enssib inventory check` also checks every file the inventory names (ssh config, known_hosts, registry CA, password file, kubeconfig): it exists, is readable, is a file, and the password file is not world-readable.',
  'Checks beyond types: duplicate host names or addresses, a pod subnet outside the pods network, not a /24 or overlapping another, a worker without a pod subnet, no storage server, an unknown role, a portal that is no storage server\'s address, a metadata host that is no storage server, overlapping networks, an NFS VIP taken by a host, labels or taints on a host that is not a worker, a workers\' gateway outside the cluster network.',
];

export const HAZARDS: { hazard: string; what: string }[] = [
  { hazard: 'SCST write cache', what: 'SCST devices run with `nv_cache 0` and `write_through 1`, or data is corrupted on a power loss; enssib always writes them and refuses to write an scst.conf where a device it exports lacks them.' },
  { hazard: 'one device identity', what: 'Both storage servers present a volume with the same identity (SCST `t10_dev_id`/`usn`, LIO `wwn`/serial), or multipathd builds two disks instead of two paths to one; enssib stores the identity in the LV tags.' },
  { hazard: 'MTU 9000', what: 'NFS over UDP needs MTU 9000 on the cluster network, or data is corrupted; `inventory check` warns when the cluster MTU is not 9000.' },
  { hazard: 'no NFS over UDP', what: "Debian 12's kernel no longer mounts NFS over UDP (`CONFIG_NFS_DISABLE_UDP_SUPPORT=y`): the site's old `nfsmount.conf` must not be copied as it is." },
  { hazard: 'default route', what: "Every worker's default route goes through the keepalived-vip host." },
  { hazard: 'snapshots', what: 'A snapshot that fills its copy-on-write area becomes invalid: size it, watch it, and always remove it, failure or not: `enssib backup snapshot` refuses when the volume group lacks its room, fails a backup whose snapshot filled up, and removes the snapshot on every exit path (and a leftover one at the next run).' },
  { hazard: 'snapshot and dual-primary', what: "With DRBD dual-primary, an LVM snapshot on one server does not see writes arriving through the other: while a snapshot exists, the other server's export of that volume must be offline. `enssib backup snapshot` takes it offline and deactivates the LV there for the snapshot's lifetime, then re-exports, rescans the workers and checks both paths, on every exit path." },
  { hazard: 'what enssib did not make', what: 'An LV without its tag, a target\'s ACLs, a field another manager owns in the cluster: never changed nor deleted.' },
];

export const SIZES = [
  `Sizes are ${SIZE_HELP}.`,
  'Units are binary: 1G = 1 GiB = 1024 MiB. A bare number ("200") and decimal-looking units ("200GB") are refused with a hint rather than guessed.',
  'The smallest size is 1M; LVM rounds a size up to its extent size (4 MiB by default).',
];

export interface Topic {
  name: string;
  title: string;
  lines: () => string[];
}

const plain = (s: string) => s.replace(/`/g, '');

export const TOPICS: Topic[] = [
  {
    name: 'exit-codes',
    title: 'Exit codes',
    lines: () => EXIT_CODES.map((e) => `  ${String(e.code).padStart(3)}  ${plain(e.meaning)}`),
  },
  {
    name: 'inventory',
    title: 'inventory.yaml: the fields',
    lines: () => [
      ...INVENTORY_FIELDS.flatMap((f) => [`  ${f.field}`, ...wrap(plain(f.meaning), 78, '      ')]),
      '',
      ...INVENTORY_NOTES.flatMap((n) => wrap(plain(n), 78, '  ')),
    ],
  },
  {
    name: 'hazards',
    title: 'Hazards enssib encodes, checks and refuses to break',
    lines: () => HAZARDS.flatMap((h) => [`  ${h.hazard}`, ...wrap(plain(h.what), 78, '      ')]),
  },
  { name: 'sizes', title: 'Sizes', lines: () => SIZES.flatMap((s) => wrap(s, 78, '  ')) },
];

// ------------------------------------------------------------ README tables

const cell = (s: string) => s.replace(/\|/g, '\\|');

export function readmeSections(): Record<string, string> {
  return {
    commands: ['| command | what it does |', '| --- | --- |', ...commandRows().map((r) => `| \`${cell(r.usage)}\` | ${cell(r.summary)} |`)].join('\n'),
    'exit-codes': ['| code | meaning |', '| --- | --- |', ...EXIT_CODES.map((e) => `| ${e.code} | ${cell(e.meaning)} |`)].join('\n'),
    inventory: ['| field | meaning |', '| --- | --- |', ...INVENTORY_FIELDS.map((f) => `| ${f.field.split(', ').map((x) => `\`${x}\``).join(', ')} | ${cell(f.meaning)} |`), '', ...INVENTORY_NOTES].join(
      '\n',
    ),
  };
}

/** The README with every generated section (between `<!-- generated:NAME -->` and `<!-- end:NAME -->`) rendered afresh. */
export function renderReadme(readme: string): string {
  let out = readme;
  for (const [name, body] of Object.entries(readmeSections())) {
    const re = new RegExp(`(<!-- generated:${name} -->\\n)[\\s\\S]*?(<!-- end:${name} -->)`);
    if (!re.test(out)) throw new Error(`README.md has no <!-- generated:${name} --> section`);
    out = out.replace(re, (_m, a: string, b: string) => `${a}${body}\n${b}`);
  }
  return out;
}
