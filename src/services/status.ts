import type { Invocation } from '../usecase.js';
import type { Context } from '../context.js';
import { asEnssibError, ExitCode, UsageError } from '../errors.js';
import type { ServiceImage } from '../site/image.js';
import { rolloutStatus } from '../k8s/rollout.js';
import { at, isRecord, isWorkload, MANAGED_BY, NAME_LABEL, num, records, showRef, str, type KObject, type ObjectRef } from '../k8s/types.js';
import { connect, defaultNamespace, servicesDir, type ServiceDeps } from './common.js';
import { mapLimit } from '../limit.js';
import { validateName } from '../validate.js';
import { prepareServices, readServices } from './deploy.js';
import { autoscaledWorkloads } from './apply.js';
import { diffObject } from './diff.js';
import { listServices } from '../site/folder.js';
import { ensureImagesLazily, parseImageRef, podSpecPaths } from './images.js';
import { loadSource, targetRef } from './prepare.js';

export interface WorkloadState {
  ref: ObjectRef;
  desired: number;
  ready: number;
  updated: number;
  available: number;
  /** Images of the pod template, as running. */
  images: string[];
  /** kubectl rollout status's line. */
  rollout: string;
  rolledOut: boolean;
  failed: boolean;
  /** When enssib last applied it (managedFields). */
  lastApplied?: string;
  /** The Progressing condition's last update (the last rollout's progress). */
  lastRollout?: string;
}

export function workloadState(o: KObject): WorkloadState {
  const v = rolloutStatus(o);
  const specPath = podSpecPaths(o)[0] ?? [];
  let spec: unknown = o;
  for (const p of specPath) spec = isRecord(spec) ? spec[p] : undefined;
  const images = records(at(spec, 'containers')).map((c) => String(c.image ?? ''));
  const applied = (o.metadata.managedFields ?? []).filter((m) => m.manager === 'enssib' && m.operation === 'Apply').map((m) => m.time ?? '');
  const progressing = records(at(o, 'status', 'conditions')).find((c) => c.type === 'Progressing');
  const desired = o.kind === 'DaemonSet' ? num(at(o, 'status', 'desiredNumberScheduled')) ?? 0 : num(at(o, 'spec', 'replicas')) ?? 1;
  const ready = o.kind === 'DaemonSet' ? num(at(o, 'status', 'numberReady')) ?? 0 : num(at(o, 'status', 'readyReplicas')) ?? 0;
  return {
    ref: { apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}) },
    desired,
    ready,
    updated: num(at(o, 'status', o.kind === 'DaemonSet' ? 'updatedNumberScheduled' : 'updatedReplicas')) ?? 0,
    available: num(at(o, 'status', o.kind === 'DaemonSet' ? 'numberAvailable' : 'availableReplicas')) ?? 0,
    images,
    rollout: v.error ?? v.message,
    rolledOut: v.done && !v.error,
    failed: v.error !== undefined,
    ...(applied.length > 0 ? { lastApplied: applied.sort().at(-1) as string } : {}),
    ...(str(progressing?.lastUpdateTime) ? { lastRollout: str(progressing?.lastUpdateTime) as string } : {}),
  };
}

export interface StatusReport {
  service: string;
  image: { reference: string | null; note: string };
  objects: { ref: ObjectRef; present: boolean; drift: 'none' | 'changed' | 'missing'; conflicts: { manager: string; field: string }[] }[];
  workloads: WorkloadState[];
  /** Objects labelled with this service in the cluster that the folder no longer has. */
  orphans: ObjectRef[];
}

/** `enssib service status <svc>` */
export async function statusCommand(ctx: Context, inv: Invocation, deps: ServiceDeps = {}): Promise<number> {
  const name = validateName('service', inv.args[0]);
  const r = await serviceStatus(ctx, name, deps);
  const c = ctx.out.c;
  ctx.out.result(
    () => r,
    () => {
      const lines = [c.bold(`service ${r.service}`), `  image in the folder: ${r.image.reference ?? '?'}${r.image.note ? c.dim(`  (${r.image.note})`) : ''}`];
      lines.push(
        ...ctx.out
          .table(
            ['OBJECT', 'IN CLUSTER', 'DRIFT'],
            r.objects.map((o) => [showRef(o.ref), o.present ? 'yes' : 'no', o.drift === 'none' ? 'none' : o.drift === 'missing' ? 'not deployed' : `differs${o.conflicts.length ? ` (${o.conflicts.map((k) => `${k.field} by ${k.manager}`).join(', ')})` : ''}`]),
          )
          .map((l) => `  ${l}`),
      );
      for (const w of r.workloads) {
        lines.push(`  ${w.ref.kind} ${w.ref.name}: ${w.ready}/${w.desired} ready, ${w.updated} up to date, ${w.available} available`);
        lines.push(`    running ${w.images.join(', ')}`);
        lines.push(`    ${w.failed ? c.red(w.rollout) : w.rolledOut ? c.green(w.rollout) : c.yellow(w.rollout)}`);
        if (w.lastApplied) lines.push(c.dim(`    last applied by enssib ${w.lastApplied}${w.lastRollout ? `, last rollout progress ${w.lastRollout}` : ''}`));
      }
      for (const o of r.orphans) lines.push(c.yellow(`  ${showRef(o)} is in the cluster with this service's label but no longer in the folder`));
      return lines;
    },
  );
  return ExitCode.ok;
}

export async function serviceStatus(ctx: Context, name: string, deps: ServiceDeps = {}): Promise<StatusReport> {
  if (ctx.opts.dryRun === 'client') throw new UsageError('service status only reads the cluster; run it without --dry-run');
  const resolver = deps.images ?? ensureImagesLazily;
  let note = '';
  let placeholder: string | undefined;
  const read = readServices(ctx, [name]);
  const api = await (deps.connect ?? connect)(ctx);
  const [p] = await prepareServices(read, async (services) => {
    try {
      return await resolver(ctx, services, { build: false, push: false });
    } catch (e) {
      note = `image not found: ${asEnssibError(e).message}`;
      const registry = ctx.inventory().data.registry.host;
      placeholder = `${registry}/(unknown)`;
      return services.map((s): ServiceImage => ({ service: s, name: s, tag: 'unknown', reference: `${registry}/${s}:unknown`, status: 'planned' }));
    }
  });
  if (!p) throw new UsageError(`no service "${name}"`);
  const namespace = defaultNamespace(ctx, api);
  const own = p.images.find((i) => i.service === name);
  const image = { reference: placeholder ? null : own ? (own.digest ? `${own.reference} (${own.digest})` : own.reference) : null, note: note || (own ? own.status : 'the manifests do not use a service image') };
  if (placeholder) {
    // compare without the image: take the running one where the folder's is unknown
    for (const x of p.objects) {
      const live = await api.get(targetRef(x.object, namespace, (await api.resource(x.object.apiVersion, x.object.kind)).namespaced));
      if (!live) continue;
      for (const sp of podSpecPaths(x.object)) {
        const mine = records(at(x.object, ...sp, 'containers'));
        const theirs = records(at(live, ...sp, 'containers'));
        for (const ctn of mine) if (String(ctn.image).endsWith(':unknown')) ctn.image = theirs.find((t) => t.name === ctn.name)?.image ?? ctn.image;
      }
    }
  }
  const objects: StatusReport['objects'] = [];
  const workloads: WorkloadState[] = [];
  const autoscaled = await autoscaledWorkloads(api, [p], namespace);
  for (const x of p.objects) {
    const d = await diffObject(api, x, namespace, autoscaled);
    objects.push({ ref: d.ref, present: d.live !== null, drift: d.live === null ? 'missing' : d.state === 'unchanged' && d.conflicts.length === 0 ? 'none' : 'changed', conflicts: d.conflicts.map((k) => ({ manager: k.manager, field: k.field })) });
    if (d.live && isWorkload(d.live)) workloads.push(workloadState(d.live));
  }
  const inFolder = new Set(objects.map((o) => `${o.ref.kind}/${o.ref.namespace ?? ''}/${o.ref.name}`));
  const orphans: ObjectRef[] = [];
  for (const [apiVersion, kind] of [
    ['apps/v1', 'Deployment'],
    ['apps/v1', 'StatefulSet'],
    ['apps/v1', 'DaemonSet'],
    ['v1', 'Service'],
  ] as const) {
    const l = await api.list(apiVersion, kind, undefined, { labelSelector: `${NAME_LABEL}=${name},${MANAGED_BY}=enssib` });
    for (const o of l.items) if (!inFolder.has(`${kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`)) orphans.push(targetRef({ ...o, apiVersion, kind }, o.metadata.namespace ?? namespace));
  }
  return { service: name, image, objects, workloads, orphans };
}

export interface ListRow {
  service: string;
  folder: boolean;
  objects: { inFolder: number; inCluster: number };
  ready: string;
  image: string;
  status: 'rolled out' | 'progressing' | 'failed' | 'not deployed' | 'partly deployed' | 'invalid folder' | 'no folder';
  note?: string;
}

/** `enssib service list` */
export async function listCommand(ctx: Context, _inv?: Invocation, deps: ServiceDeps = {}): Promise<number> {
  const rows = await listServicesState(ctx, deps);
  ctx.out.result(
    () => ({ services: rows }),
    () =>
      ctx.out.table(
        ['SERVICE', 'OBJECTS', 'READY', 'IMAGE', 'STATUS'],
        rows.map((r) => [r.service, `${r.objects.inCluster}/${r.objects.inFolder}`, r.ready, r.image, `${r.status}${r.note ? ` (${r.note})` : ''}`]),
      ),
  );
  return ExitCode.ok;
}

function shortImage(ref: string): string {
  const p = parseImageRef(ref);
  const name = p.repository.split('/').at(-1) ?? p.repository;
  if (p.digest) return `${name}@${p.digest.replace(/^sha256:/, '').slice(0, 12)}`;
  return `${name}${p.tag ? `:${p.tag.slice(0, 16)}` : ''}`;
}

export async function listServicesState(ctx: Context, deps: ServiceDeps = {}): Promise<ListRow[]> {
  if (ctx.opts.dryRun === 'client') throw new UsageError('service list only reads the cluster; run it without --dry-run');
  const root = servicesDir(ctx);
  const names = listServices(root);
  const api = await (deps.connect ?? connect)(ctx);
  const namespace = defaultNamespace(ctx, api);
  const rows = await mapLimit(names, ctx.opts.concurrency, async (name): Promise<ListRow> => {
    let objects: KObject[];
    try {
      objects = loadSource(root, name).manifests.map((m) => m.object);
    } catch (e) {
      return { service: name, folder: true, objects: { inFolder: 0, inCluster: 0 }, ready: '-', image: '-', status: 'invalid folder', note: asEnssibError(e).message };
    }
    let present = 0;
    const states: WorkloadState[] = [];
    for (const o of objects) {
      let info;
      try {
        info = await api.resource(o.apiVersion, o.kind);
      } catch {
        continue;
      }
      const live = await api.get(targetRef(o, namespace, info.namespaced));
      if (!live) continue;
      present++;
      if (isWorkload(live)) states.push(workloadState(live));
    }
    const ready = states.length ? `${states.reduce((a, s) => a + s.ready, 0)}/${states.reduce((a, s) => a + s.desired, 0)}` : '-';
    const image = [...new Set(states.flatMap((s) => s.images).map(shortImage))].join(',') || '-';
    const status: ListRow['status'] =
      present === 0 ? 'not deployed' : present < objects.length ? 'partly deployed' : states.some((s) => s.failed) ? 'failed' : states.every((s) => s.rolledOut) ? 'rolled out' : 'progressing';
    return { service: name, folder: true, objects: { inFolder: objects.length, inCluster: present }, ready, image, status };
  });
  const known = new Set(names);
  const orphans = new Map<string, WorkloadState[]>();
  for (const kind of ['Deployment', 'StatefulSet', 'DaemonSet']) {
    const l = await api.list('apps/v1', kind, undefined, { labelSelector: `${MANAGED_BY}=enssib` });
    for (const o of l.items) {
      const svc = o.metadata.labels?.[NAME_LABEL];
      if (!svc || known.has(svc)) continue;
      orphans.set(svc, [...(orphans.get(svc) ?? []), workloadState({ ...o, apiVersion: 'apps/v1', kind })]);
    }
  }
  for (const [svc, states] of [...orphans].sort(([a], [b]) => a.localeCompare(b))) {
    rows.push({
      service: svc,
      folder: false,
      objects: { inFolder: 0, inCluster: states.length },
      ready: `${states.reduce((a, s) => a + s.ready, 0)}/${states.reduce((a, s) => a + s.desired, 0)}`,
      image: [...new Set(states.flatMap((s) => s.images).map(shortImage))].join(','),
      status: 'no folder',
      note: 'in the cluster only',
    });
  }
  return rows;
}
