import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Context } from '../context.js';
import { execute } from '../engine/execute.js';
import type { RunReport } from '../engine/types.js';
import { ConfigError, ExitCode, isEnssibError, UsageError } from '../errors.js';
import { hostRows } from '../inventory/usecases.js';
import type { Inventory } from '../inventory/inventory.js';
import { parseInventory } from '../inventory/load.js';
import type { KubeApi } from '../k8s/api.js';
import { at, records, str } from '../k8s/types.js';
import { sshPool } from '../remote/pool.js';
import type { Invocation } from '../usecase.js';
import { validateName } from '../validate.js';
import { bootstrapPlan, checkPlan, fanOutLater, parseTaint, type BootstrapInput, type ClusterView, type NodeTemplates } from './bootstrap.js';
import { addWorker, checkNewAddress, parseLabels } from './inventory-edit.js';

/**
 * `enssib node list`: the workers as the inventory describes them and, when
 * the API server answers, as the cluster sees them (like `kubectl get nodes`):
 * Ready or not, kubelet version, the pod subnet the node was given (checked
 * against the inventory's), the enssib volumes in use there. Without an API
 * server, the inventory alone, and it says so.
 */

/** What the API server says of one node. */
export interface NodeLive {
  name: string;
  /** "Ready", "NotReady (reason: message)", "Unknown" */
  status: string;
  ready: boolean;
  kubelet: string | null;
  podCidr: string | null;
  internalIp: string | null;
  /** enssib volumes in use on the node (status.volumesInUse, iSCSI volumes of the inventory's IQN prefix). */
  volumes: string[];
}

export interface NodeRow {
  name: string;
  /** In the inventory as a worker; false: a node the inventory does not know. */
  inInventory: boolean;
  address: string | null;
  podSubnet: string | null;
  ssh: string | null;
  /** Null when the API server was not asked or did not answer, or the worker is not a node. */
  node: NodeLive | null;
  /** What disagrees between the inventory and the cluster. */
  problems: string[];
}

/** A Node object as NodeLive; volumes are the iSCSI ones whose IQN starts with `iqnPrefix:`. */
export function nodeLive(n: { metadata: { name: string } } & Record<string, unknown>, iqnPrefix: string): NodeLive {
  const ready = records(at(n, 'status', 'conditions')).find((c) => c.type === 'Ready');
  const readyStatus = str(ready?.status);
  const why = [str(ready?.reason), str(ready?.message)].filter(Boolean).join(': ');
  const status = readyStatus === 'True' ? 'Ready' : readyStatus === 'False' ? `NotReady${why ? ` (${why})` : ''}` : `Unknown${why ? ` (${why})` : ''}`;
  const inUse = Array.isArray(at(n, 'status', 'volumesInUse')) ? (at(n, 'status', 'volumesInUse') as unknown[]).filter((v): v is string => typeof v === 'string') : [];
  // the in-tree iSCSI plugin names a volume kubernetes.io/iscsi/<portal>:<iqn>:<lun>
  const volumes = inUse.flatMap((v) => {
    const i = v.indexOf(`${iqnPrefix}:`);
    const name = i >= 0 ? v.slice(i + iqnPrefix.length + 1).split(':')[0] : undefined;
    return name ? [name] : [];
  });
  return {
    name: n.metadata.name,
    status,
    ready: readyStatus === 'True',
    kubelet: str(at(n, 'status', 'nodeInfo', 'kubeletVersion')) ?? null,
    podCidr: str(at(n, 'spec', 'podCIDR')) ?? null,
    internalIp: str(records(at(n, 'status', 'addresses')).find((a) => a.type === 'InternalIP')?.address) ?? null,
    volumes: [...new Set(volumes)].sort(),
  };
}

/** The inventory's workers, joined with the cluster's nodes when there are any (`nodes` null: not asked or no answer). */
export function nodeRows(inv: Inventory, nodes: NodeLive[] | null): NodeRow[] {
  const workers = hostRows(inv).filter((r) => r.roles.includes('worker'));
  const byName = new Map((nodes ?? []).map((n) => [n.name, n]));
  const rows: NodeRow[] = workers.map((w) => {
    const node = byName.get(w.name) ?? null;
    const problems: string[] = [];
    if (nodes && !node) problems.push('not a node of the cluster');
    if (node && !node.ready) problems.push(`not Ready: ${node.status}`);
    if (node?.podCidr && w.podSubnet && node.podCidr !== w.podSubnet) problems.push(`the node's pod subnet is ${node.podCidr}, the inventory says ${w.podSubnet}`);
    if (node?.internalIp && node.internalIp !== w.address) problems.push(`the node's InternalIP is ${node.internalIp}, the inventory says ${w.address}`);
    return { name: w.name, inInventory: true, address: w.address, podSubnet: w.podSubnet, ssh: w.ssh, node, problems };
  });
  // nodes the inventory does not know as workers (a control-plane node the inventory lists as master is not news)
  const known = new Set(inv.hosts.map((h) => h.name));
  for (const n of nodes ?? []) {
    if (workers.some((w) => w.name === n.name) || known.has(n.name)) continue;
    rows.push({ name: n.name, inInventory: false, address: n.internalIp, podSubnet: n.podCidr, ssh: null, node: n, problems: ['in the cluster but not in the inventory'] });
  }
  return rows;
}

/** Asks the API server (a client dry run, a missing kubeconfig or no answer: why not, instead). */
async function askApi<T>(ctx: Context, ask: (api: KubeApi) => Promise<T>): Promise<{ value: T; server: string } | { why: string }> {
  if (ctx.opts.dryRun === 'client') return { why: 'a client dry run contacts nothing' };
  const { kubeconfigPath } = await import('../k8s/config.js');
  const { path, source } = kubeconfigPath(ctx);
  if (!existsSync(path)) return { why: `no kubeconfig at ${path} (from ${source})` };
  try {
    const { createKubeApi } = await import('../k8s/api.js');
    const kc = await ctx.kube();
    const api = await createKubeApi(kc, { signal: ctx.signal, timeoutMs: 10_000, source: `${path} (${source})` });
    return { value: await ask(api), server: kc.getCurrentCluster()?.server ?? '' };
  } catch (e) {
    if (!isEnssibError(e)) throw e;
    return { why: e.message };
  }
}

/** Asks the API server for its nodes; why not when it cannot be asked or does not answer. */
async function clusterNodes(ctx: Context): Promise<{ nodes: NodeLive[]; server: string } | { why: string }> {
  const iqnPrefix = ctx.inventory().data.storage.iqnPrefix;
  const r = await askApi(ctx, async (api) => (await api.list('v1', 'Node', undefined)).items.map((n) => nodeLive(n, iqnPrefix)));
  return 'value' in r ? { nodes: r.value, server: r.server } : r;
}

export async function listCommand(ctx: Context): Promise<number> {
  const inv = ctx.inventory();
  const live = await clusterNodes(ctx);
  const rows = nodeRows(inv, 'nodes' in live ? live.nodes : null);
  const source = 'nodes' in live ? { live: true, server: live.server } : { live: false, why: live.why };
  ctx.out.note(
    'nodes' in live
      ? `Inventory and cluster: the nodes as the API server ${live.server} sees them.`
      : `Inventory only: ${live.why}. STATUS, KUBELET and VOLUMES need the API server (kubeconfig: --kubeconfig, KUBECONFIG or kubernetes.kubeconfig).`,
  );
  ctx.out.result(
    () => ({ ...source, nodes: rows }),
    () => {
      const dash = (v: string | null | undefined) => v || '-';
      const table =
        'nodes' in live
          ? ctx.out.table(
              ['WORKER', 'ADDRESS', 'POD SUBNET', 'STATUS', 'KUBELET', 'VOLUMES'],
              rows.map((r) => [r.inInventory ? r.name : `${r.name} (not in the inventory)`, dash(r.address), dash(r.podSubnet), r.node ? r.node.status : 'not a node', dash(r.node?.kubelet), r.node?.volumes.join(',') || '-']),
            )
          : ctx.out.table(['WORKER', 'ADDRESS', 'POD SUBNET', 'SSH'], rows.map((r) => [r.name, dash(r.address), dash(r.podSubnet), dash(r.ssh)]));
      // STATUS shows the rest; what disagrees with the inventory is said under the table
      const problems = rows.flatMap((r) => r.problems.filter((p) => p.includes('the inventory says')).map((p) => `${r.name}: ${p}`));
      return [...table, ...(problems.length > 0 ? ['', ...problems.map((p) => ctx.out.c.yellow(`! ${p}`))] : [])];
    },
  );
  return ExitCode.ok;
}

// ---------------------------------------------------------------- bootstrap and check

/** The node templates shipped with enssib (templates/node/). */
export function nodeTemplates(): NodeTemplates {
  const dir = fileURLToPath(new URL('../../templates/node/', import.meta.url));
  const read = (f: string) => {
    try {
      return readFileSync(`${dir}${f}`, 'utf8');
    } catch {
      throw new ConfigError(`the node templates are missing (${dir}${f}): is enssib installed completely?`);
    }
  };
  return { multipath: read('multipath.conf'), nfsmount: read('nfsmount.conf'), containerd: read('containerd.toml'), network: read('cluster.network') };
}

/** A file the inventory names, read for upload; a missing one is a configuration error naming the field. */
function inventoryFile(inv: Inventory, field: string, p: string): Buffer {
  const path = inv.path(p);
  try {
    if (statSync(path).size > 1024 * 1024) throw new ConfigError(`${field}: ${path} is larger than 1 MiB; expected a key or certificate`);
    return readFileSync(path);
  } catch (e) {
    if (isEnssibError(e)) throw e;
    throw new ConfigError(`${field}: cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`, [`Set ${field} in ${inv.file} to the file's path (relative to the inventory's folder).`]);
  }
}

/** The apt signing key; a client dry run goes on without it (saying so), anything else needs it. */
function aptKeyOf(ctx: Context, inv: Inventory, p: string): Buffer {
  try {
    return inventoryFile(inv, 'nodes.apt.key', p);
  } catch (e) {
    if (ctx.opts.dryRun !== 'client' || !isEnssibError(e)) throw e;
    ctx.out.note(`warning: ${e.message}; the dry run shows the key file's write without its content`);
    return Buffer.alloc(0);
  }
}

function planInput(ctx: Context, inv: Inventory, name: string, readyTimeoutS: number): Omit<BootstrapInput, 'api'> {
  const nodes = inv.data.nodes;
  if (!nodes) throw new ConfigError(`${inv.file} has no "nodes:" block: what a worker needs (interface, apt repository and key, minimums)`, ['See `enssib help inventory`, field "nodes".']);
  return {
    inv,
    name,
    templates: nodeTemplates(),
    aptKey: aptKeyOf(ctx, inv, nodes.apt.key),
    registryCa: inv.data.registry.ca ? inventoryFile(inv, 'registry.ca', inv.data.registry.ca).toString('utf8') : null,
    now: () => Date.now(),
    readyTimeoutS,
  };
}

/** Writes a file atomically beside itself (temp file + rename), keeping its mode. */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.enssib-${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: statSync(file).mode & 0o777 });
  renameSync(tmp, file);
}

const asStrings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)]);

/**
 * A worker not in the inventory yet: its address and labels from the flags or
 * asked on a terminal, the next free pod /24, the entry added to the file.
 * Returns the inventory to plan with (written, or in memory for a dry run).
 */
async function addToInventory(ctx: Context, inv: Inventory, name: string, opts: Record<string, unknown>): Promise<Inventory> {
  const validAddress = (v: string) => {
    try {
      checkNewAddress(inv.data, v.trim());
      return true as const;
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  };
  const address = typeof opts.address === 'string' ? opts.address : (await ctx.prompt.input(`"${name}" is not in ${inv.file}. Its address on the cluster network ${inv.data.networks.cluster.cidr}?`, '--address', validAddress)).trim();
  let labelArgs = asStrings(opts.label);
  if (labelArgs.length === 0 && opts.address === undefined && ctx.prompt.interactive) {
    const given = await ctx.prompt.input('Its Kubernetes labels, key=value separated by spaces (empty: none)?', '--label', (v) => {
      try {
        parseLabels(v.split(/\s+/).filter(Boolean));
        return true;
      } catch (e) {
        return e instanceof Error ? e.message : String(e);
      }
    });
    labelArgs = given.split(/\s+/).filter(Boolean);
  }
  const text = readFileSync(inv.file, 'utf8');
  const edit = addWorker(text, inv.data, { name, address, labels: parseLabels(labelArgs) }, inv.file);
  ctx.out.note(`${name} is not in ${inv.file}: added as a worker with the pod subnet ${edit.podSubnet}:\n${edit.diff}`);
  const next = parseInventory(edit.text, inv.file, ctx.env);
  if (ctx.opts.dryRun !== false) {
    ctx.out.note(`(dry run: ${inv.file} is not written)`);
    return next;
  }
  await ctx.prompt.confirm(`Write ${name} into ${inv.file}?`);
  writeAtomic(inv.file, edit.text);
  ctx.out.note(`${inv.file}: ${name} added.`);
  return next;
}

/** The context with another inventory (a worker was just added): its own ssh connections. */
function withInventory(ctx: Context, inv: Inventory): Context {
  if (inv === ctx.inventory()) return ctx;
  const pool = sshPool(inv);
  return { ...ctx, inventory: () => inv, hosts: () => pool };
}

function timeoutOf(opts: Record<string, unknown>): number {
  const v = opts.timeout === undefined ? 300 : Number(opts.timeout);
  if (!Number.isInteger(v) || v < 1 || v > 86_400) throw new UsageError(`--timeout ${JSON.stringify(String(opts.timeout))}: expected whole seconds between 1 and 86400`);
  return v;
}

/** The fan-out hosts that failed, with what to run later. */
function fanOutFailures(report: RunReport, inv: Inventory, name: string): { worker: string; error: string; later: string[] }[] {
  const phase = report.phases.find((p) => p.id === 'fan-out');
  return (phase?.hosts ?? []).filter((h) => h.status === 'failed').map((h) => ({ worker: h.host, error: h.error?.message ?? 'failed', later: fanOutLater(inv, name, h.host) }));
}

/** `enssib node bootstrap <worker> [--address a] [--label k=v]… [--timeout s]` */
export async function bootstrapCommand(ctx: Context, inv0: Invocation): Promise<number> {
  const name = validateName('host', inv0.args[0]);
  const readyTimeoutS = timeoutOf(inv0.opts);
  let inv = ctx.inventory();
  const known = inv.hosts.some((h) => h.name === name);
  if (known && (inv0.opts.address !== undefined || asStrings(inv0.opts.label).length > 0)) {
    throw new UsageError(`"${name}" is already in ${inv.file}: --address and --label are for a worker that is not; edit its entry instead`);
  }
  // the files the plan needs are read before the inventory is edited: a missing key stops the run before anything is written
  const input = planInput(ctx, inv, name, readyTimeoutS);
  if (!known) inv = await addToInventory(ctx, inv, name, inv0.opts);
  const c = withInventory(ctx, inv);
  const plan = bootstrapPlan({
    ...input,
    inv,
    api: async () => {
      const [{ connect }, { nodeApi }] = await Promise.all([import('../services/common.js'), import('./node-api.js')]);
      return nodeApi(await connect(c, { changes: true }));
    },
  });
  try {
    const report = await execute(c, plan, {
      extra: (r) => {
        const later = fanOutFailures(r, inv, name);
        return {
          json: { later },
          text: later.flatMap((l) => [c.out.c.yellow(`! ${l.worker} has no route to ${name}'s pods yet (${l.error}). Later:`), ...l.later.map((x) => `    ${x}`)]),
        };
      },
    });
    return report.exitCode;
  } finally {
    if (c !== ctx) await c.hosts().closeAll();
  }
}

/** The Node as the API server has it, against the inventory's labels and taints; or why it was not read. */
async function clusterView(ctx: Context, inv: Inventory, name: string): Promise<ClusterView> {
  const me = inv.host(name);
  const { readNodeDrift } = await import('./node-api.js');
  const r = await askApi(ctx, (api) => readNodeDrift(api, name, me.labels ?? {}, (me.taints ?? []).map(parseTaint)));
  return 'value' in r ? { drift: r.value } : { notChecked: `no cluster API: ${r.why}` };
}

/**
 * `enssib node check <worker>`: the bootstrap's checks only — the worker, the
 * route to its pods on every other worker, its initiator on the storage
 * servers and, when the API server answers, the Node's labels, taints and
 * Ready; exit 1 when something differs from what the bootstrap makes.
 */
export async function checkCommand(ctx: Context, inv0: Invocation): Promise<number> {
  const name = validateName('host', inv0.args[0]);
  const inv = ctx.inventory();
  inv.host(name);
  const mode = ctx.opts.dryRun === 'client' ? 'client' : 'server';
  const c: Context = { ...ctx, opts: { ...ctx.opts, dryRun: mode } };
  const cluster = mode === 'client' ? undefined : await clusterView(c, inv, name);
  const notChecked = cluster && 'notChecked' in cluster ? cluster.notChecked : null;
  const report = await execute(c, checkPlan(planInput(c, inv, name, 300), cluster), {
    extra: (r) => {
      const drift = r.phases.flatMap((p) => p.hosts.filter((h) => h.status === 'would-change' || h.status === 'failed').map((h) => ({ phase: p.id, host: h.host, status: h.status, actions: h.actions, error: h.error?.message })));
      const unread = notChecked ? [c.out.c.yellow(`Node ${name} in the cluster (labels, taints, Ready): not checked: ${notChecked}.`)] : [];
      const verdict =
        drift.length === 0
          ? c.out.c.green(`${name} is as \`enssib node bootstrap ${name}\` leaves it${notChecked ? ' on its hosts (the cluster side was not checked)' : ''}.`)
          : c.out.c.yellow(`${name} differs in ${[...new Set(drift.map((d) => d.phase))].join(', ')}: \`enssib node bootstrap ${name}\` would change it.`);
      return {
        json: { drift, ...(notChecked ? { notChecked: [{ phase: 'ready', why: notChecked }] } : {}) },
        text: mode === 'client' ? [] : [...unread, verdict],
      };
    },
  });
  if (mode === 'client') return report.exitCode;
  const drifted = report.phases.some((p) => p.hosts.some((h) => h.status === 'would-change' || h.status === 'failed')) || report.findings.some((f) => f.severity === 'error');
  return drifted ? ExitCode.failed : report.exitCode === ExitCode.differences ? ExitCode.ok : report.exitCode;
}
