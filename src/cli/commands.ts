import type { Context } from '../context.js';

/**
 * Every command of enssib as data: the CLI, the interactive menu and shell
 * completion are all built from this one table. Handlers are loaded lazily so
 * that `enssib --help` loads nothing heavy.
 */
export type Completion = 'hosts' | 'workers' | 'services' | 'none';

export interface ArgSpec {
  /** e.g. "<name>", "[svc...]" */
  syntax: string;
  description: string;
  complete?: Completion;
}

export interface OptionSpec {
  flags: string;
  description: string;
  default?: string | boolean;
  choices?: string[];
}

/** Positional arguments and command-specific options as commander parsed them. */
export interface Invocation {
  args: (string | string[] | undefined)[];
  opts: Record<string, unknown>;
}

export interface CommandSpec {
  path: string[];
  summary: string;
  args?: ArgSpec[];
  options?: OptionSpec[];
  examples: string[];
  /** Loads the handler; resolves the process exit code. */
  handler: () => Promise<(ctx: Context, inv: Invocation) => Promise<number>>;
}

const notYet = (name: string, validate?: (inv: Invocation) => Promise<void>) => async () => {
  const { notImplemented } = await import('./not-implemented.js');
  return notImplemented(name, validate);
};

const names = (kind: 'volume' | 'service', ...positions: number[]) => async (inv: Invocation) => {
  const { validateName } = await import('../validate.js');
  for (const p of positions) {
    const v = inv.args[p];
    for (const one of Array.isArray(v) ? v : v === undefined ? [] : [v]) validateName(kind, one);
  }
};

const nameAndSize = async (inv: Invocation) => {
  const { validateName, parseSize } = await import('../validate.js');
  validateName('volume', inv.args[0]);
  parseSize(inv.args[1]);
};

const allOrServices: OptionSpec = { flags: '--all', description: 'every service under services/' };

export const COMMANDS: CommandSpec[] = [
  {
    path: ['inventory', 'check'],
    summary: 'validate inventory.yaml (types, addresses, pod subnets, storage portals)',
    examples: ['enssib inventory check', 'enssib --inventory site/inventory.yaml inventory check'],
    handler: async () => (await import('../inventory/usecases.js')).checkCommand,
  },
  {
    path: ['inventory', 'show'],
    summary: 'list hosts with their roles, addresses, pod subnets and how ssh reaches them',
    examples: ['enssib inventory show', 'enssib inventory show -o json'],
    handler: async () => (await import('../inventory/usecases.js')).showCommand,
  },
  {
    path: ['doctor'],
    summary: 'check that every host answers over ssh, with its kernel and system (read-only)',
    options: [{ flags: '--host <names>', description: 'only these hosts (comma-separated)' }],
    examples: ['enssib doctor', 'enssib doctor --host data1,data2', 'enssib doctor -o json'],
    handler: async () => (await import('../doctor/usecases.js')).doctorCommand,
  },
  {
    path: ['node', 'list'],
    summary: 'list the workers with their cluster address and pod subnet',
    examples: ['enssib node list', 'enssib node list -o json'],
    handler: async () => (await import('../nodes/usecases.js')).listCommand,
  },
  {
    path: ['node', 'bootstrap'],
    summary: 'prepare a new Debian worker over ssh and join it to the cluster',
    args: [{ syntax: '<host>', description: 'worker name from the inventory', complete: 'workers' }],
    examples: ['enssib node bootstrap node04 --dry-run', 'enssib node bootstrap node04 --yes'],
    handler: notYet('node bootstrap', async (inv) => {
      const { validateName } = await import('../validate.js');
      validateName('host', inv.args[0]);
    }),
  },
  {
    path: ['image', 'build'],
    summary: 'build service images with the Docker engine (content-addressed tags)',
    args: [{ syntax: '[svc...]', description: 'service folders under services/', complete: 'services' }],
    options: [allOrServices, { flags: '--pull', description: 'refresh the base image first' }],
    examples: ['enssib image build ldap', 'enssib image build --all', 'enssib image build ldap --verbose'],
    handler: async () => {
      const [{ buildCommand }, validate] = [await import('../images/usecases.js'), names('service', 0)];
      return async (ctx, inv) => {
        await validate(inv);
        return buildCommand(ctx, inv);
      };
    },
  },
  {
    path: ['image', 'push'],
    summary: 'push service images to the private registry (builds first when needed)',
    args: [{ syntax: '[svc...]', description: 'service folders under services/', complete: 'services' }],
    options: [allOrServices, { flags: '--pull', description: 'refresh the base image first' }],
    examples: ['enssib image push ldap', 'enssib image push --all --dry-run', 'enssib image push ldap -o json'],
    handler: async () => {
      const [{ pushCommand }, validate] = [await import('../images/usecases.js'), names('service', 0)];
      return async (ctx, inv) => {
        await validate(inv);
        return pushCommand(ctx, inv);
      };
    },
  },
  {
    path: ['image', 'list'],
    summary: 'the tags in the registry for each service, newest first',
    args: [{ syntax: '[svc]', description: 'one service (default: every service with a Dockerfile)', complete: 'services' }],
    examples: ['enssib image list', 'enssib image list ldap', 'enssib image list -o json'],
    handler: async () => {
      const [{ listCommand }, validate] = [await import('../images/usecases.js'), names('service', 0)];
      return async (ctx, inv) => {
        await validate(inv);
        return listCommand(ctx, inv);
      };
    },
  },
  {
    path: ['service', 'deploy'],
    summary: 'build, push, apply (server-side) and wait for the rollout; explain failures',
    args: [{ syntax: '[svc...]', description: 'service folders under services/', complete: 'services' }],
    options: [
      allOrServices,
      { flags: '--no-build', description: 'use the image already in the registry' },
      { flags: '--timeout <seconds>', description: 'rollout deadline (default: progressDeadlineSeconds)' },
      { flags: '--rollback-on-failure', description: 'put back the previous pod template when the rollout fails' },
    ],
    examples: ['enssib service deploy ldap --dry-run', 'enssib service deploy --all --no-build'],
    handler: notYet('service deploy', names('service', 0)),
  },
  {
    path: ['service', 'status'],
    summary: 'folder vs cluster: image running, ready replicas, last rollout, drift',
    args: [{ syntax: '<svc>', description: 'service name', complete: 'services' }],
    examples: ['enssib service status ldap'],
    handler: notYet('service status', names('service', 0)),
  },
  {
    path: ['service', 'list'],
    summary: 'every service folder with its state in the cluster',
    examples: ['enssib service list', 'enssib service list -o json'],
    handler: notYet('service list'),
  },
  {
    path: ['volume', 'create'],
    summary: 'LV on the DRBD-backed VG, iSCSI export on both storage servers, known to every worker on both paths',
    args: [
      { syntax: '<name>', description: 'volume name (DNS-1123 label), e.g. mail' },
      { syntax: '<size>', description: 'size in binary units: 512M, 200G, 1.5T' },
    ],
    options: [
      { flags: '--fs <type>', description: 'filesystem to create', default: 'ext4', choices: ['ext4', 'xfs', 'none'] },
      { flags: '--keep-on-failure', description: 'leave what was created when a later step fails' },
      { flags: '--verify-on <worker>', description: 'worker that checks the two paths (default: the first)' },
      { flags: '--pv', description: 'also create a PersistentVolume' },
    ],
    examples: ['enssib volume create mail 200G --dry-run', 'enssib volume create mail 200G --fs xfs'],
    handler: notYet('volume create', nameAndSize),
  },
  {
    path: ['volume', 'resize'],
    summary: 'grow a volume on both servers and every worker that has it',
    args: [
      { syntax: '<name>', description: 'volume name' },
      { syntax: '<size>', description: 'new size (grow only)' },
    ],
    options: [{ flags: '--grow-fs', description: 'grow the filesystem on the node that has it mounted' }],
    examples: ['enssib volume resize mail 300G --dry-run'],
    handler: notYet('volume resize', nameAndSize),
  },
  {
    path: ['volume', 'list'],
    summary: 'volumes with size, exports on data1/data2, paths per worker, users',
    examples: ['enssib volume list', 'enssib volume list -o json'],
    handler: notYet('volume list'),
  },
  {
    path: ['volume', 'delete'],
    summary: 'remove a volume everywhere (refused while mounted or bound; asks first)',
    args: [{ syntax: '<name>', description: 'volume name' }],
    examples: ['enssib volume delete old-mail', 'enssib volume delete old-mail --yes'],
    handler: notYet('volume delete', names('volume', 0)),
  },
  {
    path: ['backup', 'snapshot'],
    summary: 'LVM snapshot backups of volumes, always cleaned up',
    args: [{ syntax: '[volume...]', description: 'volumes to back up' }],
    options: [{ flags: '--all', description: 'every volume' }],
    examples: ['enssib backup snapshot --all', 'enssib backup snapshot mail ldap --dry-run'],
    handler: notYet('backup snapshot', names('volume', 0)),
  },
  {
    path: ['backup', 'list'],
    summary: 'backups in the backup destination',
    examples: ['enssib backup list'],
    handler: notYet('backup list'),
  },
  {
    path: ['backup', 'prune'],
    summary: 'remove backups beyond the retention the inventory sets',
    examples: ['enssib backup prune --dry-run'],
    handler: notYet('backup prune'),
  },
  {
    path: ['backup', 'restore'],
    summary: 'restore a volume from a backup',
    args: [
      { syntax: '<volume>', description: 'volume name' },
      { syntax: '<backup>', description: 'backup id from `enssib backup list`' },
    ],
    examples: ['enssib backup restore mail 2026-11-28T02:00Z --dry-run'],
    handler: notYet('backup restore', names('volume', 0)),
  },
];
