import type { KubeConfig } from '@kubernetes/client-node';
import type { Inventory } from './inventory/inventory.js';
import type { HostPool } from './remote/pool.js';
import { OperationError } from './errors.js';
import type { Output } from './ui/output.js';
import type { ProgressRenderer } from './ui/progress.js';
import type { Prompter } from './ui/prompt.js';
import type { EnsureImages } from './site/image.js';

export type DryRun = false | 'client' | 'server';

export interface GlobalOptions {
  inventory?: string;
  dryRun: DryRun;
  yes: boolean;
  output: 'text' | 'json';
  concurrency: number;
  /** --concurrency was given on the command line (not its default): a command with its own default uses it then. */
  concurrencyGiven?: boolean;
  color: boolean;
  verbose: boolean;
  kubeconfig?: string;
  context?: string;
}

/**
 * What every use case receives: options, the inventory, hosts, output and
 * prompts. Built by the CLI; tests build their own with fakes where a part
 * cannot run.
 */
export interface Context {
  readonly opts: GlobalOptions;
  readonly out: Output;
  readonly prompt: Prompter;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** The command line as typed, for the journal. */
  readonly argv: string[];
  /** Aborted at the first interruption (Ctrl-C, SIGTERM, SIGHUP): start nothing new, finish what is in flight. */
  readonly signal: AbortSignal;
  /** Aborted at the second: cancel what is in flight too (it is stopped on its hosts); cleanup still runs. */
  readonly cancel: AbortSignal;
  readonly renderer: ProgressRenderer;
  inventory(): Inventory;
  hosts(): HostPool;
  /** The Kubernetes client configuration (loads @kubernetes/client-node on first use). */
  kube(): Promise<KubeConfig>;
  /** Builds or finds the services' images (the Images use case, loaded on first use): how service commands reach it. */
  ensureImages: EnsureImages;
}

export interface ContextParts {
  opts: GlobalOptions;
  out: Output;
  prompt: Prompter;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  argv?: string[];
  signal?: AbortSignal;
  cancel?: AbortSignal;
  renderer?: ProgressRenderer;
  /**
   * How the inventory's hosts are reached: `sshPool` (remote/pool.ts), or fakes in tests.
   * Not imported here, so that a command that never uses ssh does not load it;
   * without it, hosts() throws.
   */
  hosts?: (inv: Inventory) => HostPool;
  /**
   * Loads the inventory, on first use: `inventoryLoader` (inventory/cache.ts) for
   * the command line, `loadInventory` (inventory/load.ts) in tests.
   */
  inventory: () => Inventory;
}

export function chooseRenderer(opts: GlobalOptions, env: NodeJS.ProcessEnv, stderrTTY: boolean): ProgressRenderer {
  if (opts.output === 'json' || opts.dryRun === 'client') return 'silent';
  if (!stderrTTY || env.CI || env.TERM === 'dumb') return 'simple';
  return 'default';
}

export function createContext(p: ContextParts): Context {
  const env = p.env ?? process.env;
  const cwd = p.cwd ?? process.cwd();
  let inv: Inventory | undefined;
  let pool: HostPool | undefined;
  let kc: Promise<KubeConfig> | undefined;
  const ctx: Context = {
    opts: p.opts,
    out: p.out,
    prompt: p.prompt,
    env,
    cwd,
    argv: p.argv ?? [],
    signal: p.signal ?? new AbortController().signal,
    cancel: p.cancel ?? new AbortController().signal,
    renderer: p.renderer ?? chooseRenderer(p.opts, env, process.stderr.isTTY === true),
    inventory() {
      inv ??= p.inventory();
      return inv;
    },
    hosts() {
      if (!p.hosts) throw new OperationError('internal error: this command was started without the ssh layer (hosts)');
      pool ??= p.hosts(ctx.inventory());
      return pool;
    },
    kube() {
      kc ??= import('./k8s/config.js').then((m) => m.loadKubeConfig(ctx));
      return kc;
    },
    async ensureImages(services, opts) {
      const m = await import('./images/usecases.js');
      return m.ensureImages(ctx, services, opts);
    },
  };
  return ctx;
}
