import type { Context } from '../context.js';
import type { Invocation } from '../usecase.js';
import { SIZE_HELP } from '../validate.js';

/**
 * Every command of enssib as data: the CLI, the interactive menu and shell
 * completion are all built from this one table. Handlers are loaded lazily so
 * that `enssib --help` loads nothing heavy.
 */
/**
 * What a value is: it decides how it is checked before anything runs (the CLI
 * and the menu's prompts use the same check, `values.ts`) and what completion
 * offers for it.
 */
export type ValueKind =
  | 'volume' // a volume name (completion: the names of the last `volume list`)
  | 'service' // a service folder
  | 'host' // a host of the inventory
  | 'hosts' // comma-separated hosts of the inventory
  | 'worker' // a worker of the inventory
  | 'node' // a worker of the inventory or a new one (a DNS-1123 label; completion: the workers)
  | 'size' // 200G
  | 'name' // a DNS-1123 label (secret, new service)
  | 'seconds'
  | 'ipv4'
  | 'file'
  | 'command' // command words of the table: "volume", "volume create"
  | 'text';

export interface ArgSpec {
  /** e.g. "<name>", "[svc...]" */
  syntax: string;
  description: string;
  value?: ValueKind;
}

export interface OptionSpec {
  flags: string;
  description: string;
  default?: string | boolean;
  choices?: string[];
  value?: ValueKind;
}

export interface CommandSpec {
  path: string[];
  summary: string;
  /** It changes something: it takes --dry-run seriously, and the menu offers a dry run first. */
  changes?: boolean;
  args?: ArgSpec[];
  options?: OptionSpec[];
  examples: string[];
  /**
   * It never works on the inventory's hosts over ssh (never calls ctx.hosts()):
   * the CLI then starts it without loading the ssh layer (test/unit/layering.test.ts checks it).
   */
  noSsh?: true;
  /** Loads the handler; resolves the process exit code. */
  handler: () => Promise<(ctx: Context, inv: Invocation) => Promise<number>>;
}

const volumeHandler = (fn: 'createCommand' | 'resizeCommand' | 'listCommand' | 'deleteCommand') => async () => (await import('../storage/usecases.js'))[fn];
const backupHandler = (fn: 'snapshotCommand' | 'listCommand' | 'verifyCommand' | 'pruneCommand' | 'scheduleCommand') => async () => (await import('../backup/usecases.js'))[fn];

const allOrServices: OptionSpec = { flags: '--all', description: 'every service under services/' };
const allowInsecureEngine: OptionSpec = { flags: '--allow-insecure-engine', description: 'send the registry credentials to a Docker engine over plain TCP (DOCKER_HOST=tcp://…:2375)' };
const forceConflicts: OptionSpec = { flags: '--force-conflicts', description: 'take over fields another manager owns (default: stop and name them)' };

export const COMMANDS: CommandSpec[] = [
  {
    path: ['inventory', 'check'],
    summary: 'validate inventory.yaml (types, addresses, pod subnets, storage portals)',
    examples: ['enssib inventory check', 'enssib --inventory site/inventory.yaml inventory check'],
    noSsh: true,
    handler: async () => (await import('../inventory/usecases.js')).checkCommand,
  },
  {
    path: ['inventory', 'show'],
    summary: 'list hosts with their roles, addresses, pod subnets and how ssh reaches them',
    examples: ['enssib inventory show', 'enssib inventory show -o json'],
    noSsh: true,
    handler: async () => (await import('../inventory/usecases.js')).showCommand,
  },
  {
    path: ['doctor'],
    summary: 'check the whole cluster read-only: ssh, clocks, DRBD, targets, LVM, iSCSI paths, MTU, routes, NFS, registry (from the workers too), Kubernetes',
    options: [
      { flags: '--host <names...>', description: 'only these hosts (comma-separated or repeated); the registry and kubernetes checks then run only if named by --only', value: 'hosts' },
      {
        flags: '--only <checks...>',
        description: 'only these checks: ssh clock drbd targets lvm paths mtu gateway pod-routes nfs registry-pull registry kubernetes (comma-separated or repeated)',
      },
      { flags: '--watch <seconds>', description: 'run again every N seconds and print what changed (a failover drill); Ctrl-C stops', value: 'seconds' },
    ],
    examples: [
      'enssib doctor',
      'enssib doctor --host node01,node02 --only paths,mtu',
      'enssib doctor --only drbd,targets,lvm',
      'enssib doctor --watch 5 --only drbd,paths     (during a failover drill)',
      'enssib doctor -o json | jq \'.findings[] | select(.severity == "fail")\'',
      'enssib doctor --dry-run                      (the commands it would run, per host)',
    ],
    handler: async () => (await import('../doctor/usecases.js')).doctorCommand,
  },
  {
    path: ['node', 'list'],
    summary: "list the workers: the inventory's view (address, pod subnet) and, when the API server answers, the cluster's (Ready, kubelet version, pod subnet, volumes in use)",
    examples: [
      'enssib node list',
      "enssib node list -o json | jq -r '.nodes[] | select(.problems != []) | .name'",
      'enssib doctor --only paths --host node01      (the iSCSI paths of each volume on a worker)',
    ],
    handler: async () => (await import('../nodes/usecases.js')).listCommand,
  },
  {
    path: ['node', 'bootstrap'],
    summary: "prepare a new Debian worker over ssh, route it and join it to the cluster; a worker not in the inventory is added (next free pod /24); a second run changes nothing",
    changes: true,
    args: [{ syntax: '<host>', description: 'worker name (a DNS label): from the inventory, or added to it', value: 'node' }],
    options: [
      { flags: '--address <ipv4>', description: 'a new worker: its address on the cluster network (asked on a terminal)', value: 'ipv4' },
      { flags: '--label <key=value...>', description: 'a new worker: a Kubernetes label (repeat it)', value: 'text' },
      { flags: '--timeout <s>', description: 'seconds to wait for the node to be Ready', default: '300', value: 'seconds' },
    ],
    examples: [
      'enssib node bootstrap node04 --address 10.66.6.14 --label disk=ssd --dry-run   (the inventory diff and every command)',
      'enssib node bootstrap node04 --address 10.66.6.14 --yes',
      'enssib node bootstrap node04 --yes        (again: only what is missing; a worker that was down gets its route)',
      'enssib node bootstrap node04 --dry-run=server',
    ],
    handler: async () => (await import('../nodes/usecases.js')).bootstrapCommand,
  },
  {
    path: ['node', 'check'],
    summary: "run the checks of `node bootstrap` and report what differs, phase by phase: the worker, its route on every other worker, its initiator on the storage servers, the Node's labels, taints and Ready when the API server answers (exit 1 on drift)",
    args: [{ syntax: '<host>', description: 'worker name from the inventory', value: 'worker' }],
    examples: ['enssib node check node02', "enssib node check node02 -o json | jq '.drift'", 'enssib node check node02 --dry-run     (the checks it would run)'],
    handler: async () => (await import('../nodes/usecases.js')).checkCommand,
  },
  {
    path: ['image', 'build'],
    changes: true,
    summary: 'build service images with the Docker engine (content-addressed tags)',
    args: [{ syntax: '[svc...]', description: 'service folders under services/', value: 'service' }],
    options: [allOrServices, { flags: '--pull', description: 'refresh the base image first' }, allowInsecureEngine],
    examples: ['enssib image build ldap', 'enssib image build --all', 'enssib image build ldap --verbose'],
    noSsh: true,
    handler: async () => (await import('../images/usecases.js')).buildCommand,
  },
  {
    path: ['image', 'push'],
    changes: true,
    summary: 'push service images to the private registry (builds first when needed)',
    args: [{ syntax: '[svc...]', description: 'service folders under services/', value: 'service' }],
    options: [allOrServices, { flags: '--pull', description: 'refresh the base image first' }, allowInsecureEngine],
    examples: ['enssib image push ldap', 'enssib image push --all --dry-run', 'enssib image push ldap -o json'],
    noSsh: true,
    handler: async () => (await import('../images/usecases.js')).pushCommand,
  },
  {
    path: ['image', 'list'],
    summary: 'the tags in the registry for each service, newest first',
    args: [{ syntax: '[svc]', description: 'one service (default: every service with a Dockerfile)', value: 'service' }],
    examples: ['enssib image list', 'enssib image list ldap', 'enssib image list -o json'],
    noSsh: true,
    handler: async () => (await import('../images/usecases.js')).listCommand,
  },
  {
    path: ['service', 'deploy'],
    changes: true,
    summary: 'build, push, apply (server-side) and wait for the rollout; explain failures',
    args: [{ syntax: '[svc...]', description: 'service folders under services/', value: 'service' }],
    options: [
      allOrServices,
      { flags: '--no-build', description: 'use the image already in the registry' },
      { flags: '--timeout <seconds>', description: 'rollout deadline (default: progressDeadlineSeconds)', value: 'seconds' },
      { flags: '--rollback-on-failure', description: 'put back the previous pod template when the rollout fails' },
      forceConflicts,
      allowInsecureEngine,
    ],
    examples: ['enssib service deploy ldap --dry-run', 'enssib service deploy --all --no-build', 'enssib service deploy mail --rollback-on-failure --timeout 300', 'enssib service deploy ldap --force-conflicts'],
    noSsh: true,
    handler: async () => (await import('../services/deploy.js')).deployCommand,
  },
  {
    path: ['service', 'diff'],
    summary: 'what a deploy would change: server-side dry-run apply against the live objects (exit 4 when it differs)',
    args: [{ syntax: '<svc>', description: 'service name', value: 'service' }],
    examples: ['enssib service diff ldap', 'enssib service diff ldap -o json'],
    noSsh: true,
    handler: async () => (await import('../services/diff.js')).diffCommand,
  },
  {
    path: ['service', 'status'],
    summary: 'folder vs cluster: image running, ready replicas, last rollout, drift',
    args: [{ syntax: '<svc>', description: 'service name', value: 'service' }],
    examples: ['enssib service status ldap', 'enssib service status ldap -o json'],
    noSsh: true,
    handler: async () => (await import('../services/status.js')).statusCommand,
  },
  {
    path: ['service', 'list'],
    summary: 'every service folder with its state in the cluster',
    examples: ['enssib service list', 'enssib service list -o json'],
    noSsh: true,
    handler: async () => (await import('../services/status.js')).listCommand,
  },
  {
    path: ['service', 'expose'],
    changes: true,
    summary: "put a service behind a routable address (keepalived-vip's ConfigMap)",
    args: [{ syntax: '<svc>', description: 'service name', value: 'service' }],
    options: [{ flags: '--ip <address>', description: "address on the users' network, e.g. 192.168.66.20", value: 'ipv4' }, forceConflicts],
    examples: ['enssib service expose www --ip 192.168.66.20 --dry-run', 'enssib service expose www --ip 192.168.66.20'],
    noSsh: true,
    handler: async () => (await import('../services/expose.js')).exposeCommand,
  },
  {
    path: ['service', 'new'],
    changes: true,
    summary: 'a new service folder (Dockerfile, Deployment, Service, Calico policy) that deploys as it is',
    args: [{ syntax: '<name>', description: 'service name (DNS-1123 label), e.g. wiki', value: 'name' }],
    examples: ['enssib service new wiki', 'enssib service new wiki --dry-run'],
    noSsh: true,
    handler: async () => (await import('../services/new.js')).newServiceCommand,
  },
  {
    path: ['secret', 'create'],
    changes: true,
    summary: 'create or update a Secret from files (contents never printed nor journaled)',
    args: [{ syntax: '<name>', description: 'Secret name, e.g. cert-ldap', value: 'name' }],
    options: [
      { flags: '--from-file <key=path...>', description: 'a key and the file holding its value (repeatable; key defaults to the file name)' },
      { flags: '--namespace <ns>', description: 'namespace (default: the inventory\'s kubernetes.namespace)', value: 'name' },
      { flags: '--type <type>', description: 'Secret type (default Opaque; kubernetes.io/tls needs tls.crt and tls.key)' },
      forceConflicts,
    ],
    examples: ['enssib secret create cert-ldap --from-file tls.crt=ldap.crt --from-file tls.key=ldap.key', 'enssib secret create cert-ldap --from-file ca.crt --dry-run'],
    noSsh: true,
    handler: async () => (await import('../services/secret.js')).secretCreateCommand,
  },
  {
    path: ['volume', 'create'],
    changes: true,
    summary: 'LV on the DRBD-backed VG, iSCSI export on both storage servers, known to every worker on both paths',
    args: [
      { syntax: '<name>', description: 'volume name (DNS-1123 label; not starting "snapshot" or "pvmove", which LVM reserves), e.g. mail', value: 'volume' },
      { syntax: '<size>', description: `size: ${SIZE_HELP}`, value: 'size' },
    ],
    options: [
      { flags: '--fs <type>', description: 'filesystem to create', default: 'ext4', choices: ['ext4', 'xfs', 'none'] },
      { flags: '--keep-on-failure', description: 'leave what was created when a later step fails' },
      { flags: '--verify-on <worker>', description: 'worker that checks the two paths (default: the first)', value: 'worker' },
      { flags: '--pv', description: 'also create a PersistentVolume' },
      { flags: '--lock-wait <seconds>', description: 'how long to wait for the storage lock (default 60)', value: 'seconds' },
    ],
    examples: ['enssib volume create mail 200G --dry-run', 'enssib volume create mail 200G --fs xfs', 'enssib volume create mail 200G --pv'],
    handler: volumeHandler('createCommand'),
  },
  {
    path: ['volume', 'resize'],
    changes: true,
    summary: 'grow a volume on both servers and every worker that has it',
    args: [
      { syntax: '<name>', description: 'volume name', value: 'volume' },
      { syntax: '<size>', description: `new size (grow only): ${SIZE_HELP}`, value: 'size' },
    ],
    options: [
      { flags: '--grow-fs', description: 'grow the filesystem on the node that has it mounted' },
      { flags: '--lock-wait <seconds>', description: 'how long to wait for the storage lock (default 60)', value: 'seconds' },
    ],
    examples: ['enssib volume resize mail 300G --dry-run', 'enssib volume resize mail 300G --grow-fs'],
    handler: volumeHandler('resizeCommand'),
  },
  {
    path: ['volume', 'list'],
    summary: 'volumes with size, exports on data1/data2, paths per worker, users',
    examples: ['enssib volume list', 'enssib volume list -o json'],
    handler: volumeHandler('listCommand'),
  },
  {
    path: ['volume', 'delete'],
    changes: true,
    summary: 'remove a volume everywhere (refused while mounted or bound; asks first)',
    args: [{ syntax: '<name>', description: 'volume name', value: 'volume' }],
    options: [
      { flags: '--skip-pv-check', description: 'do not ask the API server whether a PersistentVolume uses the volume (when it is down)' },
      { flags: '--lock-wait <seconds>', description: 'how long to wait for the storage lock (default 60)', value: 'seconds' },
    ],
    examples: ['enssib volume delete old-mail', 'enssib volume delete old-mail --yes'],
    handler: volumeHandler('deleteCommand'),
  },
  {
    path: ['lock', 'status'],
    summary: 'who holds the storage lock on the metadata host, and whether that command still runs (read-only)',
    examples: ['enssib lock status', 'enssib lock status -o json'],
    handler: async () => (await import('../storage/lock-commands.js')).lockStatusCommand,
  },
  {
    path: ['lock', 'break'],
    summary: "remove a stale storage lock (asks first; refused while the holder's ssh session is alive)",
    examples: ['enssib lock break', 'enssib lock break --yes', 'enssib lock break --dry-run'],
    handler: async () => (await import('../storage/lock-commands.js')).lockBreakCommand,
  },
  {
    path: ['journal'],
    summary: 'who changed what, when, with what outcome: the runs the journal recorded, oldest first (read-only)',
    options: [
      { flags: '--since <when>', description: 'only runs since a duration ago (30m, 12h, 2d, 1w) or a date (2026-12-01, 2026-12-01T14:00Z)' },
      { flags: '--host <name>', description: 'only runs that changed something, or failed, on this host', value: 'host' },
      { flags: '--command <words>', description: 'only this command: "volume", "volume create", "service deploy"', value: 'command' },
    ],
    examples: [
      'enssib journal --since 2d',
      'enssib journal --host data1 --command "volume create"',
      "enssib journal -o json | jq -c 'select(.exitCode != 0)'      (one JSON record per line)",
    ],
    noSsh: true,
    handler: async () => (await import('../journal/usecases.js')).journalCommand,
  },
  {
    path: ['backup', 'snapshot'],
    changes: true,
    summary: 'back up volumes from LVM snapshots (a zstd image, or borg create with backup.method: borg), always cleaned up; exit 3 when some volumes failed',
    args: [{ syntax: '[volume...]', description: 'volumes to back up', value: 'volume' }],
    options: [
      { flags: '--all', description: 'every volume' },
      { flags: '--lock-wait <seconds>', description: "how long to wait for a volume's lock (default 0: a volume another command holds fails)", value: 'seconds' },
    ],
    examples: [
      'enssib backup snapshot --all                   (one volume at a time: 0 all backed up, 3 some failed, 1 all failed)',
      'enssib backup snapshot --all --concurrency 2   (two copies at once, 1 to 16)',
      'enssib backup snapshot mail ldap --dry-run',
      'enssib backup snapshot --all 2>backup.log      (no terminal: plain progress lines, one per volume every 30 s)',
      'enssib backup snapshot ldap --dry-run          (quiesced when services/ldap has hooks/pre-snapshot.mjs or backup: { freeze: true } in enssib.yaml)',
      'enssib backup snapshot mail --dry-run          (backup.method: borg: borg init if needed, then borg create of the snapshot into <destination>/borg)',
    ],
    handler: backupHandler('snapshotCommand'),
  },
  {
    path: ['backup', 'list'],
    summary: 'backups in the catalogue (the backup destination)',
    args: [{ syntax: '[volume]', description: 'only this volume', value: 'volume' }],
    examples: ['enssib backup list', 'enssib backup list mail -o json'],
    handler: backupHandler('listCommand'),
  },
  {
    path: ['backup', 'verify'],
    summary: "recompute the backups' checksums where they are (the storage server or the backup host; borg check --verify-data for borg backups) and report mismatches",
    args: [{ syntax: '[backup...]', description: 'backup ids (default: all)' }],
    examples: ['enssib backup verify', 'enssib backup verify mail.20261203T020000Z', 'enssib backup verify --dry-run   (the sha256sum, or the borg check, it would run)'],
    handler: backupHandler('verifyCommand'),
  },
  {
    path: ['backup', 'prune'],
    changes: true,
    summary: 'remove backups beyond the retention the inventory sets (asks first; borg prune then borg compact for borg backups)',
    examples: ['enssib backup prune --dry-run=server   (lists what would go; for borg backups, as borg prune --dry-run --list says)', 'enssib backup prune --yes'],
    handler: backupHandler('pruneCommand'),
  },
  {
    path: ['backup', 'schedule'],
    summary: 'print, or with --install write and enable, a systemd service and timer (Persistent) that back up every volume daily, then prune',
    options: [
      { flags: '--at <HH:MM>', description: 'time of day (default 02:00)' },
      { flags: '--install', description: 'write the units on this machine, reload systemd, enable and start the timer (asks first, or --yes)' },
      { flags: '--unit-dir <dir>', description: 'with --install: where the units go (default /etc/systemd/system)', value: 'file' },
      { flags: '--force', description: 'with --install: replace a unit enssib did not write (one without its marker line)' },
    ],
    examples: ['enssib backup schedule', 'enssib backup schedule --at 03:30', 'enssib backup schedule --install --at 03:30 --yes', 'enssib backup schedule --install --dry-run'],
    handler: backupHandler('scheduleCommand'),
  },
  {
    path: ['backup', 'restore'],
    changes: true,
    summary: 'restore a backup into a new volume (default), or over an existing one with --force',
    args: [
      { syntax: '<volume>', description: 'the volume the backup was made of', value: 'volume' },
      { syntax: '<backup>', description: 'backup id from `enssib backup list`' },
    ],
    options: [
      { flags: '--to <name>', description: 'name of the new volume (default <volume>-r<MMDDhhmm>, the backup\'s time in UTC)' },
      { flags: '--force', description: 'write over the existing volume (--to, default <volume>): refused while a worker has it logged in or mounted; its export is offline on both servers during the write and always put back; asks first or takes --yes' },
      { flags: '--keep-on-failure', description: 'keep a new volume that failed half way (marked incomplete) instead of removing it' },
      { flags: '--lock-wait <seconds>', description: 'how long to wait for the storage lock (default 60; a new volume holds it only to create and to export, not during the write)', value: 'seconds' },
    ],
    examples: [
      'enssib backup restore mail mail.20261203T020000Z                  (into the new volume mail-r12030200; other volume commands run during the write)',
      'enssib backup restore mail mail.20261203T020000Z --to mail-old --dry-run=server',
      'enssib backup restore mail mail.20261203T020000Z --force --yes    (over mail: stop its pods first)',
    ],
    handler: async () => (await import('../backup/restore-command.js')).restoreCommand,
  },
];
