import type Ipaddr from 'ipaddr.js';
import type { Invocation } from '../usecase.js';
import type { Context } from '../context.js';
import { journalTaskRun, runMode, taskJson, taskReport } from '../engine/task-report.js';
import type { RunReport } from '../engine/types.js';
import { ConfigError, ExitCode, UsageError } from '../errors.js';
import { objectDiff } from '../k8s/diff.js';
import { isRecord, type KObject } from '../k8s/types.js';
import { connect, defaultNamespace, servicesDir, type ServiceDeps } from './common.js';
import { validateName } from '../validate.js';
import { applyOwned } from './apply.js';
import { loadSource } from './prepare.js';
import { requireCjs } from '../require.js';

const ipaddr = requireCjs('ipaddr.js') as typeof Ipaddr;

/**
 * keepalived-vip's ConfigMap: data key = the routable address, value =
 * "namespace/service" (upstream), or several of them separated by commas (the
 * site's change to keepalived-vip, so that one address serves several services).
 */
export function addToVip(data: Record<string, string>, address: string, entry: string): { data: Record<string, string>; changed: boolean; entries: string[] } {
  const current = (data[address] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (current.includes(entry)) return { data: { ...data }, changed: false, entries: current };
  const entries = [...current, entry];
  return { data: { ...data, [address]: entries.join(',') }, changed: true, entries };
}

/** A routable IPv4 address, outside the cluster's internal networks. */
export function checkVipAddress(ctx: Context, address: unknown): string {
  if (typeof address !== 'string' || address === '') throw new UsageError('--ip: missing address', ['e.g. enssib service expose www --ip 192.168.66.20']);
  const shown = JSON.stringify(address.slice(0, 60));
  if (!ipaddr.IPv4.isValidFourPartDecimal(address)) throw new UsageError(`--ip ${shown} is not an IPv4 address`, ['e.g. --ip 192.168.66.20']);
  const ip = ipaddr.IPv4.parse(address);
  if (['unspecified', 'broadcast', 'multicast', 'loopback', 'linkLocal'].includes(ip.range())) throw new UsageError(`--ip ${address} is a ${ip.range()} address, not one users can reach`);
  const nets = ctx.inventory().data.networks;
  for (const [label, cidr] of [
    ['pods', nets.pods],
    ['services', nets.services],
    ['cluster', nets.cluster.cidr],
  ] as const) {
    if (ip.match(ipaddr.IPv4.parseCIDR(cidr))) throw new UsageError(`--ip ${address} is inside the ${label} network ${cidr}; a service is exposed on an address of the users' network`);
  }
  if (nets.users && !ip.match(ipaddr.IPv4.parseCIDR(nets.users))) ctx.out.warn(`${address} is outside the users' network ${nets.users} named in the inventory`);
  else if (nets.users) {
    const len = ipaddr.IPv4.parseCIDR(nets.users)[1];
    const network = ipaddr.IPv4.networkAddressFromCIDR(nets.users).toString();
    const broadcast = ipaddr.IPv4.broadcastAddressFromCIDR(nets.users).toString();
    if (len < 31 && (address === network || address === broadcast)) {
      throw new UsageError(`--ip ${address} is the ${address === network ? 'network' : 'broadcast'} address of the users' network ${nets.users}; no host can answer on it`, [
        `Choose an address from ${firstHost(network)} to ${lastHost(broadcast)}.`,
      ]);
    }
  }
  return address;
}

function firstHost(network: string): string {
  const b = ipaddr.IPv4.parse(network).toByteArray();
  b[3] = (b[3] ?? 0) + 1;
  return b.join('.');
}

function lastHost(broadcast: string): string {
  const b = ipaddr.IPv4.parse(broadcast).toByteArray();
  b[3] = (b[3] ?? 1) - 1;
  return b.join('.');
}

export interface ExposeReport {
  service: string;
  address: string;
  configMap: string;
  entry: string;
  entries: string[];
  changed: boolean;
  dryRun: false | 'client' | 'server';
  diff?: string;
  /** The run as every command that changes the world reports it (journaled when real). */
  run: RunReport;
}

/** `enssib service expose <svc> --ip <address>` */
export async function exposeCommand(ctx: Context, inv: Invocation, deps: Pick<ServiceDeps, 'connect'> = {}): Promise<number> {
  const { run, ...r } = await exposeService(ctx, validateName('service', inv.args[0]), inv.opts.ip, deps, { forceConflicts: inv.opts.forceConflicts === true });
  ctx.out.result(
    () => taskJson(run, r),
    () => {
      if (r.dryRun === 'client') return [`Dry run: nothing was contacted.`, `would add ${r.entry} to key ${r.address} of ConfigMap ${r.configMap} (kept beside the services already on that address), applied server-side (field manager enssib)`];
      const lines = r.changed
        ? [`${r.address} → ${r.entries.join(',')}${r.dryRun ? ' (dry run: not applied)' : ''}`, `  in ConfigMap ${r.configMap}`]
        : [`${r.entry} is already behind ${r.address} (ConfigMap ${r.configMap}); nothing to do`];
      if (r.diff) lines.push(...r.diff.split('\n').map((l) => `  ${l}`));
      return lines;
    },
  );
  return ExitCode.ok;
}

export async function exposeService(ctx: Context, name: string, ipOpt: unknown, deps: Pick<ServiceDeps, 'connect'> = {}, o: { forceConflicts?: boolean } = {}): Promise<ExposeReport> {
  const started = Date.now();
  const address = checkVipAddress(ctx, ipOpt);
  const vip = ctx.inventory().data.keepalivedVip;
  if (!vip) throw new ConfigError(`${ctx.inventory().file}: no keepalivedVip section`, ['Name the keepalived-vip ConfigMap there: keepalivedVip: { configMap: vip-configmap, namespace: kube-system }']);
  const source = loadSource(servicesDir(ctx), name);
  const services = source.manifests.filter((m) => m.object.kind === 'Service' && m.object.apiVersion === 'v1');
  if (services.length === 0) throw new ConfigError(`${source.folder.dir}: no Service object: keepalived-vip sends the traffic to a Service`);
  const svc = services.find((m) => m.object.metadata.name === name) ?? (services.length === 1 ? services[0] : undefined);
  if (!svc) throw new ConfigError(`${source.folder.dir}: several Service objects (${services.map((m) => m.object.metadata.name).join(', ')}) and none is named "${name}"`);
  const cmRef = `${vip.namespace}/${vip.configMap}`;
  const base = { service: name, address, configMap: cmRef };
  /** The run report: one item, the ConfigMap; journaled when real. */
  const run = (status: 'planned' | 'would-change' | 'done' | 'unchanged', entries: string[]): RunReport => {
    const report = taskReport({
      plan: `service expose ${name} --ip ${address}`,
      mode: runMode(ctx),
      started,
      exitCode: ExitCode.ok,
      phases: [{ title: 'keepalived-vip ConfigMap', items: [{ item: `ConfigMap ${cmRef}`, status, actions: status === 'unchanged' ? [] : [`apply v1 ConfigMap ${cmRef}: ${address} = ${entries.join(',')}`] }] }],
    });
    journalTaskRun(ctx, report);
    return report;
  };
  if (ctx.opts.dryRun === 'client') {
    const ns = svc.object.metadata.namespace ?? ctx.inventory().data.kubernetes.namespace ?? 'default';
    const entry = `${ns}/${svc.object.metadata.name}`;
    return { ...base, entry, entries: [entry], changed: true, dryRun: 'client', run: run('planned', [entry]) };
  }
  const api = await (deps.connect ?? connect)(ctx, { changes: true });
  const ns = svc.object.metadata.namespace ?? defaultNamespace(ctx, api);
  const entry = `${ns}/${svc.object.metadata.name}`;
  const ref = { apiVersion: 'v1', kind: 'ConfigMap', name: vip.configMap, namespace: vip.namespace };
  const live = await api.get(ref);
  const data: Record<string, string> = {};
  if (live && isRecord(live.data)) for (const [k, v] of Object.entries(live.data)) data[k] = String(v);
  const merged = addToVip(data, address, entry);
  if (!merged.changed) return { ...base, entry, entries: merged.entries, changed: false, dryRun: ctx.opts.dryRun, run: run('unchanged', merged.entries) };
  const cm: KObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    // resourceVersion: refuse to overwrite a change made since the read (two admins at once)
    metadata: { name: vip.configMap, namespace: vip.namespace, ...(live?.metadata.resourceVersion ? { resourceVersion: live.metadata.resourceVersion } : {}) },
    data: merged.data,
  };
  const r = await applyOwned(api, cm, { forceConflicts: o.forceConflicts === true, dryRun: ctx.opts.dryRun === 'server' });
  const diff = objectDiff(live, r.object, { live: `live/ConfigMap ${cmRef}`, result: `ConfigMap ${cmRef}` });
  return { ...base, entry, entries: merged.entries, changed: true, dryRun: ctx.opts.dryRun, ...(diff ? { diff } : {}), run: run(ctx.opts.dryRun === 'server' ? 'would-change' : 'done', merged.entries) };
}
