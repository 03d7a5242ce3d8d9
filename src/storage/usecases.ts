import type { Invocation } from '../usecase.js';
import type { Context } from '../context.js';
import { execute, runnerContext, type ResultExtra } from '../engine/execute.js';
import { runPlan } from '../engine/runner.js';
import type { RunReport } from '../engine/types.js';
import { ExitCode, InterruptedError, OperationError, PartialFailureError, UsageError } from '../errors.js';
import { rememberVolumes } from '../recent-volumes.js';
import { parseSize } from '../validate.js';
import { NEW_IDENTITY, newIdentity } from './identity.js';
import { createPersistentVolume, volumeUsers, type VolumeUser } from './kube.js';
import { lockOwner, placeholderOwner } from './lock.js';
import { createSummary, deleteSummary, resizeSummary } from './plan-summary.js';
import { FILESYSTEMS, type Filesystem } from './lvm.js';
import { createPlan, createResult, createResultLines, type CreateRequest } from './volume-create.js';
import { PHASE_GUARD, PHASE_TARGET_SESSIONS, PHASE_WORKERS_READ, deleteOutcome, deletePlan } from './volume-delete.js';
import { listLines, listPlan, listRows } from './volume-list.js';
import { DECISION as RESIZE_DECISION, resizePlan, resizeResult, resizeResultLines } from './volume-resize.js';
import { volumeLockError } from './volume-lock.js';
import { PHASE_LOCK, PHASE_RELEASE, iqnOf, lockError, readError, releaseError, validateVolumeName, volumeSite, type VolumeSite } from './volume.js';

/** The `enssib volume …` commands: validate everything local, build the plan, run it, say what happened. */

const DEFAULT_LOCK_WAIT_S = 60;
/**
 * The worker phases are a few short iSCSI commands per worker: they run on up
 * to this many workers at once (more with a larger -c), so that 20 workers
 * take about the time of one.
 */
const WORKERS_AT_ONCE = 32;
const workersAtOnce = (ctx: Context) => Math.max(ctx.opts.concurrency, WORKERS_AT_ONCE);

function lockWait(opts: Record<string, unknown>): number {
  const v = opts.lockWait;
  if (v === undefined) return DEFAULT_LOCK_WAIT_S;
  if (typeof v !== 'string' || !/^\d{1,5}$/.test(v)) throw new UsageError(`--lock-wait ${JSON.stringify(v)}: expected a number of seconds`);
  return Number(v);
}

function siteAndName(ctx: Context, raw: unknown): { site: VolumeSite; name: string } {
  const site = volumeSite(ctx.inventory());
  return { site, name: validateVolumeName(site, raw) };
}

/** Errors that stop a run before anything changed, turned into what the user reads. */
function stopError(report: RunReport, site: VolumeSite): Error | null {
  if (report.interrupted) return null;
  return lockError(report, site) ?? volumeLockError(report, site) ?? readError(report) ?? releaseError(report, site);
}

/**
 * An interrupted run (Ctrl-C, SIGTERM, SIGHUP): what was undone, what is left
 * where, and whether the storage lock was released.
 */
function interruptedError(report: RunReport, what: string, keepOnFailure: boolean): InterruptedError {
  const failedUndo = report.undo.filter((u) => !u.ok);
  const changed = report.phases.some((p) => p.title !== PHASE_LOCK && p.title !== PHASE_RELEASE && p.hosts.some((h) => h.status === 'done' || h.partial));
  const details = keepOnFailure
    ? ['--keep-on-failure: what was done stays (listed above); run the command again to finish it.']
    : failedUndo.length > 0
      ? ['Some undo steps failed; what is left where is listed above under "Undo".']
      : report.undo.length > 0
        ? ['What this run had done was undone (listed above under "Undo").']
        : changed
          ? ['What was done is listed above; run the command again to finish it.']
          : ['Nothing had been changed.'];
  const release = report.phases.find((p) => p.title === PHASE_RELEASE)?.hosts[0];
  if (release?.status === 'failed') details.push(`The storage lock may still be held: ${release.error?.message ?? 'its release failed'}`);
  return new InterruptedError(`${what} interrupted during "${report.stoppedAt}"`, details);
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new OperationError(`${what}: no answer after ${ms / 1000} s`)), ms)))]);
  } finally {
    if (t) clearTimeout(t);
  }
}

export async function createCommand(ctx: Context, inv: Invocation): Promise<number> {
  const { site, name } = siteAndName(ctx, inv.args[0]);
  const sizeBytes = parseSize(inv.args[1]);
  const fs = (inv.opts.fs ?? 'ext4') as Filesystem;
  if (!FILESYSTEMS.includes(fs)) throw new UsageError(`--fs ${JSON.stringify(fs)}: expected ext4, xfs or none`);
  let verifyOn: string | null = site.workers[0] ?? null;
  if (inv.opts.verifyOn !== undefined) {
    const v = String(inv.opts.verifyOn);
    if (!site.workers.includes(v)) throw new UsageError(`--verify-on ${JSON.stringify(v)} is not a worker of the inventory`, [`Workers: ${site.workers.join(', ') || 'none'}`]);
    verifyOn = v;
  }
  const req: CreateRequest = {
    name,
    sizeBytes,
    fs,
    verifyOn,
    pv: inv.opts.pv === true,
    keepOnFailure: inv.opts.keepOnFailure === true,
    lockWaitS: lockWait(inv.opts),
    workerConcurrency: workersAtOnce(ctx),
  };
  if (req.pv && ctx.opts.dryRun !== 'client') {
    // --pv: the kubeconfig's cluster is checked against the inventory and named before the first change
    const { kubeTarget, targetLine } = await import('../k8s/config.js');
    ctx.out.note(targetLine(kubeTarget(ctx, await ctx.kube())));
  }
  const plan = createPlan(site, req, {
    // a client dry run shows a placeholder, so that the same command prints the same plan
    identity: ctx.opts.dryRun === 'client' ? NEW_IDENTITY : newIdentity(),
    owner: ownerFor(ctx),
    createPv: async (pv) => withTimeout(createPersistentVolume(await ctx.kube(), pv), 30_000, 'the Kubernetes API'),
  });
  const cmdline = ['enssib', 'volume', 'create', name, inv.args[1] as string, ...(fs !== 'ext4' ? ['--fs', fs] : [])].join(' ');
  const report = await execute(ctx, plan, {
    extra: (r) => {
      const res = createResult(site, req, r);
      return withSummary(r, res ? { json: { volume: res }, text: createResultLines(res, cmdline) } : {}, [createSummary(site, req)]);
    },
  });
  if (report.interrupted && report.mode === 'apply') throw interruptedError(report, `volume create ${name}`, req.keepOnFailure);
  const stop = stopError(report, site);
  if (stop) throw stop;
  if (report.exitCode === ExitCode.partial) {
    const res = createResult(site, req, report);
    if (res && res.pending.length > 0) {
      throw new PartialFailureError(`volume ${name} is created, but ${res.pending.map((p) => p.host).join(', ')} could not be told about it`, ['See the commands to run later above.']);
    }
  }
  if (report.stoppedAt && report.mode === 'apply') {
    const failedUndo = report.undo.filter((u) => !u.ok);
    throw new OperationError(
      `volume create ${name} failed at "${report.stoppedAt}"`,
      req.keepOnFailure
        ? ['--keep-on-failure: what was created stays; run the command again to finish it.']
        : failedUndo.length > 0
          ? ['Some undo steps failed; what is left where is listed above under "Undo".']
          : report.undo.length > 0
            ? ['What this run had created was undone.']
            : ['Nothing had been changed yet.'],
    );
  }
  return report.exitCode;
}

export async function resizeCommand(ctx: Context, inv: Invocation): Promise<number> {
  const { site, name } = siteAndName(ctx, inv.args[0]);
  const sizeBytes = parseSize(inv.args[1], 'new size');
  const req = { name, sizeBytes, growFs: inv.opts.growFs === true, lockWaitS: lockWait(inv.opts), workerConcurrency: workersAtOnce(ctx) };
  const plan = resizePlan(site, req, ownerFor(ctx));
  const report = await execute(ctx, plan, {
    extra: (r) => {
      const res = resizeResult(site, req, r);
      const fs = r.state.values.get(RESIZE_DECISION)?.fs ?? null;
      return withSummary(r, res ? { json: { volume: res }, text: resizeResultLines(res, req.growFs, fs) } : {}, [resizeSummary(site, req)]);
    },
  });
  if (report.interrupted && report.mode === 'apply') throw interruptedError(report, `volume resize ${name}`, false);
  const stop = stopError(report, site);
  if (stop) throw stop;
  if (report.stoppedAt && report.mode === 'apply') throw new OperationError(`volume resize ${name} failed at "${report.stoppedAt}"`, ['Run the command again once the cause is fixed: every step checks what is already done.']);
  return report.exitCode;
}

/** A dry run ends with its plan summary (text) and carries it as `summary` (JSON). */
function withSummary(r: RunReport, base: ResultExtra, summary: string[]): ResultExtra {
  if (r.mode === 'apply') return base;
  return { json: { ...base.json, summary: summary.join(' ') }, text: [...(base.text ?? []), '', ...summary] };
}

/** The lock owner; a client dry run shows placeholders so that the same command prints the same plan. */
function ownerFor(ctx: Context) {
  return ctx.opts.dryRun === 'client' ? placeholderOwner(ctx.argv) : lockOwner(ctx.argv);
}

async function usersOf(ctx: Context, iqns: string[]): Promise<Map<string, VolumeUser[]>> {
  const kc = await ctx.kube();
  return withTimeout(volumeUsers(kc, iqns), 15_000, 'the Kubernetes API');
}

export async function deleteCommand(ctx: Context, inv: Invocation): Promise<number> {
  const { site, name } = siteAndName(ctx, inv.args[0]);
  const checkPvs = inv.opts.skipPvCheck !== true;
  const plan = deletePlan(site, { name, lockWaitS: lockWait(inv.opts), checkPvs, workerConcurrency: workersAtOnce(ctx) }, {
    owner: ownerFor(ctx),
    users: async (iqn) => {
      try {
        return (await usersOf(ctx, [iqn])).get(iqn) ?? [];
      } catch (e) {
        throw new OperationError(`cannot check whether a PersistentVolume uses volume "${name}": ${(e as Error).message}`, [
          'Nothing was changed. If the API server is down and you know no PersistentVolume refers to the volume, run again with --skip-pv-check.',
        ]);
      }
    },
  });
  if (ctx.opts.dryRun === false) {
    await ctx.prompt.confirm(`Delete volume "${name}" and all its data (LV ${site.vg}/${name}, exports on ${site.servers.map((s) => s.name).join(' and ')}, target on every worker)?`);
  }
  const report = await execute(ctx, plan, {
    extra: (r) => {
      const outcome = deleteOutcome(r);
      return withSummary(r, { json: { volume: { name, iqn: iqnOf(site, name), outcome } }, text: outcome === 'deleted' ? ['', `Volume ${name} deleted.`] : [] }, deleteSummary(site, { name }, ctx.opts.yes));
    },
  });
  if (report.interrupted && report.mode === 'apply') throw interruptedError(report, `volume delete ${name}`, false);
  const stop = stopError(report, site);
  if (stop) throw stop;
  if (report.stoppedAt && report.mode === 'apply') {
    const o = report.phases.find((p) => p.title === report.stoppedAt)?.hosts.find((h) => h.status === 'failed');
    const before = [PHASE_TARGET_SESSIONS, PHASE_WORKERS_READ, PHASE_GUARD].includes(report.stoppedAt);
    if (before && o?.error?.exitCode === ExitCode.usage) throw new UsageError(o.error.message, o.error.details);
    throw new OperationError(
      before ? `volume delete ${name} refused: ${o?.error?.message ?? report.stoppedAt}` : `volume delete ${name} stopped at "${report.stoppedAt}"`,
      before ? [...(o?.error?.details ?? []), 'Nothing was changed.'] : ['Run the command again once the cause is fixed: it removes what is left.'],
    );
  }
  return report.exitCode;
}

export async function listCommand(ctx: Context): Promise<number> {
  const site = volumeSite(ctx.inventory());
  const plan = listPlan(site, workersAtOnce(ctx));
  if (ctx.opts.dryRun === 'client') {
    await execute(ctx, plan);
    return ExitCode.ok;
  }
  const report = await runPlan(plan, { mode: 'server', concurrency: ctx.opts.concurrency, hosts: ctx.hosts(), ...runnerContext(ctx) });
  const { rows, unreachable } = listRows(site, report);
  const serversDown = site.servers.filter((sv) => unreachable.includes(sv.name)).map((sv) => sv.name);
  if (serversDown.length === site.servers.length) {
    // Nothing to list from: never claim "No volumes." when no storage server answered.
    throw new OperationError(`no storage server answered (${serversDown.join(', ')}): the volumes are unknown`, [
      ...report.phases.flatMap((p) => p.hosts.filter((h) => h.status === 'failed' && h.error).map((h) => `${h.host}: ${h.error?.message ?? ''}`)),
      'Check them with: enssib doctor',
    ]);
  }
  rememberVolumes(ctx.env, ctx.inventory().file, rows.map((r) => r.name));
  let apiNote: string | null = null;
  if (rows.length > 0) {
    try {
      const users = await usersOf(
        ctx,
        rows.map((r) => r.iqn),
      );
      for (const r of rows) r.usedBy = users.get(r.iqn) ?? [];
    } catch (e) {
      apiNote = `USED BY is unknown: ${(e as Error).message}`;
    }
  }
  const answered = site.servers.map((sv) => sv.name).filter((n) => !serversDown.includes(n));
  const text = (): string[] => {
    if (rows.length === 0 && serversDown.length > 0) {
      return [`No volumes on ${answered.join(', ')}; ${serversDown.join(', ')} did not answer: a volume only ${serversDown.length > 1 ? 'they know' : 'it knows'} of is not listed.`, ...(unreachable.length > serversDown.length ? [`Did not answer either: ${unreachable.filter((u) => !serversDown.includes(u)).join(', ')}.`] : [])];
    }
    const lines = listLines(site, rows, (h, b) => ctx.out.table(h, b), apiNote);
    if (unreachable.length > 0) lines.push('', `Did not answer: ${unreachable.join(', ')}${rows.length > 0 ? ' ("?" above: not confirmed)' : ''}.`);
    return lines;
  };
  ctx.out.result(() => ({ volumes: rows, unreachable, complete: unreachable.length === 0, ...(apiNote ? { usedByUnknown: apiNote } : {}) }), text);
  return unreachable.length > 0 ? ExitCode.partial : ExitCode.ok;
}

