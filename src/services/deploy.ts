import { join, relative } from 'node:path';
import type { Invocation } from '../usecase.js';
import type { Context } from '../context.js';
import { journalTaskRun, runMode, taskJson, taskReport, type ItemOutcome } from '../engine/task-report.js';
import type { RunReport } from '../engine/types.js';
import { errorSummary, ExitCode, InterruptedError, OperationError, UsageError } from '../errors.js';
import type { ServiceImage } from '../site/image.js';
import type { KubeApi } from '../k8s/api.js';
import { diagnoseWorkload, findingLines, type Finding } from '../k8s/diagnose.js';
import { objectDiff, redacted, toYaml } from '../k8s/diff.js';
import { deepEqual, FIELD_MANAGER, isWorkload, showRef, at, type KObject, type ObjectRef } from '../k8s/types.js';
import { kindWord, waitForRollout, type WaitResult } from '../k8s/wait.js';
import { chosenServices, connect, defaultNamespace, parseTimeout, seconds, servicesDir, type ServiceDeps } from './common.js';
import { mapLimit } from '../limit.js';
import { ensureImagesLazily, pinnedReference } from './images.js';
import { applyOwned, applyTarget, autoscaledWorkloads, type Autoscaled } from './apply.js';
import { manifestFiles } from './manifests.js';
import { imageCatalogue, loadSource, planImages, prepareService, targetRef, type ImagePlan, type PreparedService, type ServiceSource } from './prepare.js';

export interface DeployOptions {
  /** Build and push the images (false: --no-build, look the tag up in the registry). */
  build: boolean;
  /** --timeout in seconds (default: each workload's progressDeadlineSeconds without progress). */
  timeoutS?: number;
  rollbackOnFailure: boolean;
  /** --force-conflicts: take over fields other managers own (default: stop on them). */
  forceConflicts?: boolean;
  /** --allow-insecure-engine: registry credentials may go to an engine over plain TCP. */
  allowInsecureEngine?: boolean;
}

export type ObjectAction = 'created' | 'configured' | 'unchanged' | 'planned' | 'would change' | 'failed';

export interface ObjectOutcome {
  ref: ObjectRef;
  file: string;
  line: number;
  action: ObjectAction;
  diff?: string;
}

export interface RolloutOutcome {
  ref: ObjectRef;
  ok: boolean;
  outcome: WaitResult['outcome'];
  message: string;
  details: string[];
  durationMs: number;
}

export interface RollbackOutcome {
  ref: ObjectRef;
  ok: boolean;
  message: string;
  details: string[];
}

export interface ServiceOutcome {
  service: string;
  status: 'deployed' | 'failed' | 'planned' | 'interrupted';
  images: { service: string; reference: string; status: ServiceImage['status']; digest?: string }[];
  objects: ObjectOutcome[];
  rollouts: RolloutOutcome[];
  findings: Finding[];
  rollbacks: RollbackOutcome[];
  error?: { message: string; details: string[] };
  durationMs: number;
}

export interface DeployReport {
  dryRun: false | 'client' | 'server';
  services: ServiceOutcome[];
  exitCode: number;
  durationMs: number;
  /** The run as every command that changes the world reports it (journaled when real). */
  run: RunReport;
}

/** `enssib service deploy <svc...>|--all [--no-build] [--timeout s] [--rollback-on-failure]` */
export async function deployCommand(ctx: Context, inv: Invocation, deps: ServiceDeps = {}): Promise<number> {
  const timeoutS = parseTimeout(inv.opts.timeout);
  let names = chosenServices(ctx, inv.args[0], inv.opts.all === true);
  if (inv.opts.all === true) {
    // --all: folders without Kubernetes YAML (a base image, say) have nothing to deploy
    const root = servicesDir(ctx);
    const skipped = names.filter((n) => manifestFiles(join(root, n)).length === 0);
    if (skipped.length > 0) ctx.out.note(`no Kubernetes YAML in ${skipped.map((n) => `services/${n}`).join(', ')}: nothing to deploy there`);
    names = names.filter((n) => !skipped.includes(n));
    if (names.length === 0) throw new UsageError(`no service folder under ${root} has Kubernetes YAML`);
  }
  const report = await deployServices(ctx, names, {
    build: inv.opts.build !== false,
    rollbackOnFailure: inv.opts.rollbackOnFailure === true,
    forceConflicts: inv.opts.forceConflicts === true,
    allowInsecureEngine: inv.opts.allowInsecureEngine === true,
    ...(timeoutS !== undefined ? { timeoutS } : {}),
  }, deps);
  return report.exitCode;
}

/** Reads and checks the services' folders: everything that can be refused is refused here, before any contact. */
export function readServices(ctx: Context, names: string[]): { sources: ServiceSource[]; plan: ImagePlan } {
  const root = servicesDir(ctx);
  const sources = names.map((n) => loadSource(root, n));
  const catalogue = imageCatalogue(
    root,
    sources.map((s) => s.folder),
  );
  const plan = planImages(sources, catalogue, ctx.inventory().data.registry.host);
  for (const w of plan.warnings) ctx.out.warn(w);
  return { sources, plan };
}

/** The services as they will be applied: images resolved (only those the manifests use) and pinned. */
export async function prepareServices(read: { sources: ServiceSource[]; plan: ImagePlan }, images: (services: string[]) => Promise<ServiceImage[]>): Promise<PreparedService[]> {
  const resolved = read.plan.services.length > 0 ? await images(read.plan.services) : [];
  return read.sources.map((s) => prepareService(s, read.plan, resolved));
}

export async function deployServices(ctx: Context, names: string[], o: DeployOptions, deps: ServiceDeps = {}): Promise<DeployReport> {
  const started = Date.now();
  const resolver = deps.images ?? ensureImagesLazily;
  const read = readServices(ctx, names);
  // the API server first: when it is down or refuses the token, nothing is built or pushed
  const api = ctx.opts.dryRun === 'client' ? undefined : await (deps.connect ?? connect)(ctx, { changes: true });
  const prepared = await prepareServices(read, (services) => resolver(ctx, services, { build: o.build, push: true, ...(o.allowInsecureEngine ? { allowInsecureEngine: true } : {}) }));
  if (!api) {
    const ns = ctx.inventory().data.kubernetes.namespace ?? 'default';
    const services = prepared.map((p) => plannedOutcome(p, ns));
    const report = deployReport(ctx, names, services, ExitCode.ok, started);
    ctx.out.result(
      () => taskJson(report.run, { services: services.map((s, i) => ({ ...s, manifests: (prepared[i] as PreparedService).objects.map((x) => redacted(x.object)) })) }),
      () => clientPlanLines(ctx, prepared, ns),
    );
    return report;
  }

  const namespace = defaultNamespace(ctx, api);
  const autoscaled = await autoscaledWorkloads(api, prepared, namespace);
  const how = { autoscaled, forceConflicts: o.forceConflicts === true };

  if (ctx.opts.dryRun === 'server') {
    const services = await mapLimit(prepared, ctx.opts.concurrency, (p) => serverDryRun(api, p, namespace, how));
    const report = deployReport(ctx, names, services, services.some((s) => s.status === 'failed') ? ExitCode.failed : ExitCode.ok, started);
    ctx.out.result(() => taskJson(report.run, { services }), () => serverPlanLines(ctx, report));
    return report;
  }

  const services = await mapLimit(prepared, ctx.opts.concurrency, (p) => deployOne(ctx, api, p, namespace, o, how));
  const failed = services.filter((s) => s.status !== 'deployed');
  const exitCode = services.some((s) => s.status === 'interrupted')
    ? ExitCode.interrupted
    : failed.length === 0
      ? ExitCode.ok
      : failed.length === services.length
        ? ExitCode.failed
        : ExitCode.partial;
  const report = deployReport(ctx, names, services, exitCode, started);
  ctx.out.result(() => taskJson(report.run, { services }), () => summaryLines(ctx, report));
  return report;
}

const ITEM_STATUS: Record<ServiceOutcome['status'], ItemOutcome['status']> = { deployed: 'done', failed: 'failed', interrupted: 'failed', planned: 'planned' };

/** The deploy as a run report (one item per service; rollbacks as its undo), journaled when real. */
function deployReport(ctx: Context, names: string[], services: ServiceOutcome[], exitCode: number, started: number): DeployReport {
  const mode = runMode(ctx);
  const run = taskReport({
    plan: `service deploy ${names.join(' ')}`,
    mode,
    started,
    exitCode,
    phases: [
      {
        title: mode === 'apply' ? 'apply (server-side) and wait for the rollouts' : 'apply (server-side dry run)',
        items: services.map((s) => ({
          item: s.service,
          status: s.status === 'planned' && mode === 'server' ? (s.objects.some((x) => x.action === 'would change') ? 'would-change' : 'unchanged') : ITEM_STATUS[s.status],
          actions: [
            ...s.images.map((i) => `image ${i.reference}${i.digest ? ` (${i.digest})` : ''}: ${i.status}`),
            ...s.objects.map((x) => `apply ${showRef(x.ref)}: ${x.action}`),
            ...s.rollouts.map((r) => `rollout ${showRef(r.ref)}: ${r.message}`),
            ...s.rollbacks.map((r) => `rollback ${showRef(r.ref)}: ${r.message}`),
          ],
          ...(s.error ? { error: new OperationError(s.error.message, s.error.details) } : s.status === 'failed' ? { error: new OperationError(s.rollouts.find((r) => !r.ok)?.message ?? 'failed') } : {}),
          durationMs: s.durationMs,
        })),
      },
    ],
    undo: services.flatMap((s) => s.rollbacks.map((r) => ({ phase: 'rollback', host: s.service, ok: r.ok, actions: [`rollback ${showRef(r.ref)}: ${r.message}`] }))),
  });
  journalTaskRun(ctx, run);
  return { dryRun: ctx.opts.dryRun, services, exitCode, durationMs: run.durationMs, run };
}

function imageInfo(p: PreparedService): ServiceOutcome['images'] {
  return p.images.map((i) => ({ service: i.service, reference: pinnedReference(i), status: i.status, ...(i.digest ? { digest: i.digest } : {}) }));
}

function plannedOutcome(p: PreparedService, ns: string): ServiceOutcome {
  return {
    service: p.name,
    status: 'planned',
    images: imageInfo(p),
    objects: p.objects.map((x) => ({ ref: targetRef(x.object, ns), file: x.manifest.file, line: x.manifest.line, action: 'planned' })),
    rollouts: [],
    findings: [],
    rollbacks: [],
    durationMs: 0,
  };
}

/** Applies every object of one service, waits for its workloads, explains and (if asked) rolls back a failure. */
/** How objects are applied: what autoscalers scale (replicas left out), and whether conflicts are forced. */
interface ApplyHow {
  autoscaled: Autoscaled;
  forceConflicts: boolean;
}

async function deployOne(ctx: Context, api: KubeApi, p: PreparedService, namespace: string, o: DeployOptions, how: ApplyHow): Promise<ServiceOutcome> {
  const started = performance.now();
  const out: ServiceOutcome = { service: p.name, status: 'failed', images: imageInfo(p), objects: [], rollouts: [], findings: [], rollbacks: [], durationMs: 0 };
  const say = (t: string) => ctx.out.note(`${p.name}: ${t}`);
  const before = new Map<string, KObject | null>();
  const applied: KObject[] = [];
  try {
    for (const x of p.objects) {
      if (ctx.signal.aborted) throw new InterruptedError();
      const { ref, body, leftOut } = await applyTarget(api, x, namespace, how.autoscaled);
      const live = await api.get(ref);
      const r = await applyOwned(api, body, { forceConflicts: how.forceConflicts });
      for (const l of leftOut) say(`${showRef(ref)}: not applied: ${l}`);
      const action: ObjectAction = r.created || !live ? 'created' : live.metadata.resourceVersion === r.object.metadata.resourceVersion ? 'unchanged' : 'configured';
      out.objects.push({ ref, file: x.manifest.file, line: x.manifest.line, action });
      before.set(showRef(ref), live);
      say(`${showRef(ref)} ${action}`);
      applied.push(r.object);
    }
  } catch (e) {
    out.error = errorSummary(e);
    out.status = e instanceof InterruptedError || ctx.signal.aborted ? 'interrupted' : 'failed';
    out.durationMs = performance.now() - started;
    return out;
  }

  const workloads = applied.filter(isWorkload);
  const results = await Promise.all(workloads.map((w) => watchRollout(ctx, api, w, o, say)));
  out.rollouts = results.map((r, i) => rolloutOutcome(workloads[i] as KObject, r));
  if (results.every((r) => r.ok)) {
    out.status = 'deployed';
    out.durationMs = performance.now() - started;
    return out;
  }
  if (results.some((r) => r.outcome === 'interrupted')) {
    out.status = 'interrupted';
    out.durationMs = performance.now() - started;
    return out;
  }
  const failed = results.map((r, i) => ({ r, w: workloads[i] as KObject })).filter((x) => !x.r.ok);
  for (const { r } of failed) {
    try {
      out.findings.push(...(await diagnoseWorkload(api, r.object)));
    } catch (e) {
      out.findings.push({ kind: 'not-ready', pods: [], message: `could not gather the pods' state: ${errorSummary(e).message}`, details: [] });
    }
  }
  if (o.rollbackOnFailure) {
    for (const { r, w } of failed) out.rollbacks.push(await rollback(ctx, api, w, r.object, before.get(showRef(refOfApplied(w))) ?? null, o, say));
  }
  out.status = 'failed';
  out.durationMs = performance.now() - started;
  return out;
}

function refOfApplied(w: KObject): ObjectRef {
  return { apiVersion: w.apiVersion, kind: w.kind, name: w.metadata.name, ...(w.metadata.namespace ? { namespace: w.metadata.namespace } : {}) };
}

function watchRollout(ctx: Context, api: KubeApi, w: KObject, o: DeployOptions, say: (t: string) => void): Promise<WaitResult> {
  return waitForRollout(api, w, {
    ...(o.timeoutS !== undefined ? { timeoutMs: o.timeoutS * 1000 } : {}),
    signal: ctx.signal,
    onStatus: (m) => say(m),
  });
}

function rolloutOutcome(w: KObject, r: WaitResult): RolloutOutcome {
  return { ref: refOfApplied(w), ok: r.ok, outcome: r.outcome, message: r.message, details: r.details, durationMs: Math.round(r.elapsedMs) };
}

/** Puts back the pod template the workload had before this deploy, and waits for it. */
async function rollback(ctx: Context, api: KubeApi, w: KObject, current: KObject, previous: KObject | null, o: DeployOptions, say: (t: string) => void): Promise<RollbackOutcome> {
  const ref = refOfApplied(w);
  if (!previous) return { ref, ok: false, message: `nothing to roll back to: ${kindWord(w)} "${ref.name}" did not exist before this deploy`, details: [] };
  const prevTemplate = at(previous, 'spec', 'template');
  if (deepEqual(prevTemplate, at(current, 'spec', 'template'))) {
    return { ref, ok: false, message: 'nothing to roll back: this deploy did not change the pod template', details: ['The failure comes from something else (see above).'] };
  }
  say(`rolling back ${kindWord(w)} "${ref.name}" to its previous pod template`);
  try {
    const patched = await api.jsonPatch(ref, [{ op: 'replace', path: '/spec/template', value: prevTemplate }], `${FIELD_MANAGER}-rollback`);
    const r = await watchRollout(ctx, api, patched, o, say);
    return { ref, ok: r.ok, message: r.ok ? `rolled back: ${r.message}` : `the rollback did not finish either: ${r.message}`, details: r.details };
  } catch (e) {
    const err = errorSummary(e);
    return { ref, ok: false, message: `rollback failed: ${err.message}`, details: err.details };
  }
}

/** --dry-run=server: every object through a server-side dry-run apply, compared with the live one. */
async function serverDryRun(api: KubeApi, p: PreparedService, namespace: string, how: ApplyHow): Promise<ServiceOutcome> {
  const out: ServiceOutcome = { service: p.name, status: 'planned', images: imageInfo(p), objects: [], rollouts: [], findings: [], rollbacks: [], durationMs: 0 };
  try {
    for (const x of p.objects) {
      const { ref, body } = await applyTarget(api, x, namespace, how.autoscaled);
      const live = await api.get(ref);
      const r = await applyOwned(api, body, { forceConflicts: how.forceConflicts, dryRun: true });
      const diff = objectDiff(live, r.object, { live: `live/${showRef(ref)}`, result: relative(process.cwd(), x.manifest.file) || x.manifest.file });
      out.objects.push({ ref, file: x.manifest.file, line: x.manifest.line, action: !live ? 'would change' : diff ? 'would change' : 'unchanged', ...(diff ? { diff } : {}) });
    }
  } catch (e) {
    out.status = 'failed';
    out.error = errorSummary(e);
  }
  return out;
}

function imageLine(i: ServiceOutcome['images'][number]): string {
  const how: Record<ServiceImage['status'], string> = {
    planned: 'built and pushed at deploy time if the registry lacks it; pinned to its digest then',
    pushed: 'built and pushed',
    built: 'built',
    present: 'already in the registry',
  };
  return `image ${i.reference}  (${how[i.status]})`;
}

function clientPlanLines(ctx: Context, prepared: PreparedService[], ns: string): string[] {
  const c = ctx.out.c;
  const lines = [c.bold(`Dry run of "service deploy ${prepared.map((p) => p.name).join(' ')}": nothing was contacted (no API server, no registry, no Docker engine).`)];
  for (const p of prepared) {
    lines.push('', c.bold(`${p.name}`) + c.dim(`  (${p.folder.dir})`));
    for (const i of imageInfo(p)) lines.push(`  ${imageLine(i)}`);
    const workloads = p.objects.filter((x) => isWorkload(x.object)).map((x) => `${x.object.kind} ${x.object.metadata.name}`);
    lines.push(`  server-side apply of ${p.objects.length} object(s) (field manager ${FIELD_MANAGER}, force), in this order:`);
    for (const x of p.objects) {
      const ref = targetRef(x.object, ns);
      lines.push('', `  ${c.cyan(`--- ${showRef(ref)}`)}  ${c.dim(`(${x.manifest.file}:${x.manifest.line})`)}`);
      const { name: objName, namespace: _ns, ...meta } = x.object.metadata;
      const shown = { ...redacted(x.object), metadata: { name: objName, ...(ref.namespace ? { namespace: ref.namespace } : {}), ...meta } };
      lines.push(...toYaml(shown).replace(/\n$/, '').split('\n').map((l) => `  ${l}`));
    }
    lines.push('', workloads.length > 0 ? `  then wait for the rollout of ${workloads.join(', ')} (watch; deadline: progressDeadlineSeconds or --timeout)` : '  (no Deployment, StatefulSet or DaemonSet to wait for)');
  }
  return lines;
}

function serverPlanLines(ctx: Context, r: DeployReport): string[] {
  const c = ctx.out.c;
  const lines = [c.bold('Dry run (server): each object went through a server-side dry-run apply; nothing was changed.')];
  for (const s of r.services) {
    lines.push('', c.bold(s.service));
    for (const i of s.images) lines.push(`  ${imageLine(i)}`);
    for (const x of s.objects) {
      lines.push(`  ${showRef(x.ref)}: ${x.action === 'unchanged' ? c.dim('unchanged') : c.yellow(x.action)}`);
      if (x.diff) lines.push(...x.diff.split('\n').map((l) => `    ${l}`));
    }
    if (s.error) lines.push(`  ${c.red('error:')} ${s.error.message}`, ...s.error.details.map((d) => `    ${d}`));
  }
  return lines;
}

function summaryLines(ctx: Context, r: DeployReport): string[] {
  const c = ctx.out.c;
  const ok = r.services.filter((s) => s.status === 'deployed').length;
  const lines = ['', c.bold(`Deployed ${ok} of ${r.services.length} service(s) in ${seconds(r.durationMs)}`)];
  for (const s of r.services) {
    const mark = s.status === 'deployed' ? c.green('deployed') : s.status === 'interrupted' ? c.yellow('interrupted') : c.red('FAILED');
    lines.push(`  ${s.service}: ${mark} ${c.dim(`(${seconds(s.durationMs)})`)}`);
    for (const i of s.images) lines.push(`    ${imageLine(i)}`);
    for (const x of s.objects) lines.push(`    ${showRef(x.ref)}: ${x.action}`);
    for (const ro of s.rollouts) {
      lines.push(`    ${ro.ok ? c.green('✓') : c.red('✗')} ${ro.message}`);
      for (const d of ro.details) lines.push(`        ${d}`);
    }
    if (s.error) {
      lines.push(`    ${c.red('error:')} ${s.error.message}`);
      for (const d of s.error.details) lines.push(`      ${d}`);
    }
    if (s.findings.length > 0) {
      lines.push(`    ${c.bold('why:')}`);
      for (const l of findingLines(s.findings)) lines.push(`      ${l}`);
    }
    for (const rb of s.rollbacks) {
      lines.push(`    ${rb.ok ? c.green('rolled back') : c.red('not rolled back')}: ${rb.message}`);
      for (const d of rb.details) lines.push(`      ${d}`);
    }
    if (s.status === 'failed' && s.rollbacks.length === 0 && s.rollouts.some((x) => !x.ok)) {
      lines.push(c.dim('    (run again with --rollback-on-failure to put back the previous version automatically)'));
    }
  }
  return lines;
}

