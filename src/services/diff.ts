import { relative } from 'node:path';
import type { Invocation } from '../usecase.js';
import type { Context } from '../context.js';
import { ExitCode, UsageError } from '../errors.js';
import { ApplyConflictError, type FieldConflict, type KubeApi } from '../k8s/api.js';
import { objectDiff } from '../k8s/diff.js';
import { showRef, type KObject, type ObjectRef } from '../k8s/types.js';
import { connect, defaultNamespace, type ServiceDeps } from './common.js';
import { validateName } from '../validate.js';
import { prepareServices, readServices } from './deploy.js';
import { ensureImagesLazily } from './images.js';
import { applyTarget, autoscaledWorkloads, type Autoscaled } from './apply.js';
import type { PreparedObject } from './prepare.js';

export interface ObjectDiff {
  ref: ObjectRef;
  file: string;
  line: number;
  state: 'new' | 'changed' | 'unchanged';
  /** Fields other managers own that a deploy (force) would take over. */
  conflicts: FieldConflict[];
  diff: string;
  /** The live object and what a deploy would make of it (for status and tests). */
  live: KObject | null;
  result: KObject;
}

export interface DiffReport {
  service: string;
  differences: boolean;
  objects: ObjectDiff[];
  exitCode: number;
}

/** `enssib service diff <svc>`: exit 0 when a deploy would change nothing, 4 when it would. */
export async function diffCommand(ctx: Context, inv: Invocation, deps: ServiceDeps = {}): Promise<number> {
  const name = validateName('service', inv.args[0]);
  const report = await diffService(ctx, name, deps);
  const c = ctx.out.c;
  ctx.out.result(
    () => ({ ...report, objects: report.objects.map(({ live: _l, result: _r, ...rest }) => rest) }),
    () => {
      const lines: string[] = [];
      for (const o of report.objects) {
        if (o.state === 'unchanged' && o.conflicts.length === 0) {
          lines.push(c.dim(`  ${showRef(o.ref)}: unchanged`));
          continue;
        }
        lines.push(c.bold(`${showRef(o.ref)}: ${o.state === 'new' ? 'would be created' : 'would change'}`));
        for (const k of o.conflicts) lines.push(c.yellow(`  ! ${k.field} is managed by "${k.manager}"; a deploy stops on it unless given --force-conflicts`));
        if (o.diff) lines.push(...o.diff.split('\n').map((l) => (l.startsWith('+') && !l.startsWith('+++') ? c.green(l) : l.startsWith('-') && !l.startsWith('---') ? c.red(l) : l)));
      }
      lines.push(report.differences ? `${report.service}: a deploy would change ${report.objects.filter((o) => o.state !== 'unchanged').length} object(s)` : `${report.service}: the cluster matches the folder`);
      return lines;
    },
  );
  return report.exitCode;
}

export async function diffService(ctx: Context, name: string, deps: ServiceDeps = {}): Promise<DiffReport> {
  if (ctx.opts.dryRun === 'client') throw new UsageError('service diff only reads the cluster (a server-side dry-run apply); it has nothing to show without contacting it — run it without --dry-run');
  const resolver = deps.images ?? ensureImagesLazily;
  const read = readServices(ctx, [name]);
  const api = await (deps.connect ?? connect)(ctx);
  const [p] = await prepareServices(read, (services) => resolver(ctx, services, { build: false, push: false }));
  if (!p) throw new UsageError(`no service "${name}"`);
  const namespace = defaultNamespace(ctx, api);
  const objects: ObjectDiff[] = [];
  const autoscaled = await autoscaledWorkloads(api, [p], namespace);
  for (const x of p.objects) objects.push(await diffObject(api, x, namespace, autoscaled));
  const differences = objects.some((o) => o.state !== 'unchanged' || o.conflicts.length > 0);
  return { service: name, differences, objects, exitCode: differences ? ExitCode.differences : ExitCode.ok };
}

/**
 * Server-side dry-run apply of what a deploy applies (fields left to controllers
 * taken out), without force to learn the conflicts, then with force to show what
 * --force-conflicts would make of the live object.
 */
export async function diffObject(api: KubeApi, x: PreparedObject, namespace: string, autoscaled: Autoscaled): Promise<ObjectDiff> {
  const { ref, body } = await applyTarget(api, x, namespace, autoscaled);
  const live = await api.get(ref);
  let conflicts: FieldConflict[] = [];
  let result: KObject;
  try {
    result = (await api.apply(body, { force: false, dryRun: true })).object;
  } catch (e) {
    if (!(e instanceof ApplyConflictError)) throw e;
    conflicts = e.conflicts;
    result = (await api.apply(body, { force: true, dryRun: true })).object;
  }
  const diff = objectDiff(live, result, { live: `live/${showRef(ref)}`, result: relative(process.cwd(), x.manifest.file) || x.manifest.file });
  return { ref, file: x.manifest.file, line: x.manifest.line, state: !live ? 'new' : diff ? 'changed' : 'unchanged', conflicts, diff, live, result };
}
