import { existsSync } from 'node:fs';
import type { Context } from '../context.js';
import { ExitCode, isEnssibError } from '../errors.js';
import { hostRows } from '../inventory/usecases.js';
import type { Inventory } from '../inventory/inventory.js';
import { at, records, str } from '../k8s/types.js';

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

/** Asks the API server for its nodes; null and why when it cannot be asked or does not answer. */
async function clusterNodes(ctx: Context): Promise<{ nodes: NodeLive[]; server: string } | { why: string }> {
  if (ctx.opts.dryRun === 'client') return { why: 'a client dry run contacts nothing' };
  const { kubeconfigPath } = await import('../k8s/config.js');
  const { path, source } = kubeconfigPath(ctx);
  if (!existsSync(path)) return { why: `no kubeconfig at ${path} (from ${source})` };
  try {
    const { createKubeApi } = await import('../k8s/api.js');
    const kc = await ctx.kube();
    const api = await createKubeApi(kc, { signal: ctx.signal, timeoutMs: 10_000, source: `${path} (${source})` });
    const list = await api.list('v1', 'Node', undefined);
    const iqnPrefix = ctx.inventory().data.storage.iqnPrefix;
    return { nodes: list.items.map((n) => nodeLive(n, iqnPrefix)), server: kc.getCurrentCluster()?.server ?? '' };
  } catch (e) {
    if (!isEnssibError(e)) throw e;
    return { why: e.message };
  }
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
