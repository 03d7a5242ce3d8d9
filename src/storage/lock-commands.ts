import type { Invocation } from '../usecase.js';
import type { Context } from '../context.js';
import { execute, runnerContext } from '../engine/execute.js';
import { runPlan } from '../engine/runner.js';
import type { Phase, Plan, RunReport } from '../engine/types.js';
import { ExitCode, OperationError } from '../errors.js';
import { lockStatusArgv, parseLockStatus, releaseArgv, type LockStatus } from './lock.js';
import { command, volumeSite, type VolumeSite } from './volume.js';

/**
 * `enssib lock status` and `enssib lock break`: the storage lock on the
 * metadata host, who holds it and whether the holder's ssh session still runs;
 * a stale lock (its holder's session is gone) removed after confirmation.
 */

export const PHASE_LOCK_STATUS = 'read the storage lock';
export const PHASE_LOCK_BREAK = 'remove the stale storage lock';

/** What break may do with a lock in this state (pure). */
export function breakDecision(site: Pick<VolumeSite, 'meta' | 'lockFile'>, st: LockStatus): { kind: 'free' } | { kind: 'break'; token: string } | { kind: 'refuse'; error: OperationError } {
  if (!st.held) return { kind: 'free' };
  if (st.alive === 'yes') {
    return {
      kind: 'refuse',
      error: new OperationError(`the storage lock on ${site.meta} is held by ${st.holder ?? 'an unknown holder'}, whose ssh session (sshd pid ${st.sessionPid ?? '?'} on ${site.meta}) is still alive`, [
        'That command is still running: wait for it to finish. Nothing was changed.',
      ]),
    };
  }
  if (!st.token) {
    return {
      kind: 'refuse',
      error: new OperationError(`the storage lock ${site.lockFile} on ${site.meta} has no holder enssib can read`, [`Look at it yourself: ssh ${site.meta} cat ${site.lockFile}. Nothing was changed.`]),
    };
  }
  return { kind: 'break', token: st.token };
}

type PlanFn = NonNullable<Phase['plan']>;

function statusPhase(site: VolumeSite, title: string, plan: PlanFn): Phase {
  return { title, hosts: [site.meta], checks: () => [lockStatusArgv(site.lockFile)], plan };
}

function readStatus(site: VolumeSite, host: string, facts: Parameters<PlanFn>[1]): LockStatus | null {
  const r = facts?.[0];
  if (!r) return null;
  try {
    return parseLockStatus(r);
  } catch (e) {
    throw new OperationError(`${host}: ${(e as Error).message}`, [`the lock file is ${site.lockFile}`]);
  }
}

/** The read-only plan of `lock status`. */
export function lockStatusPlan(site: VolumeSite): Plan {
  return { title: 'lock status', mutating: false, phases: [statusPhase(site, PHASE_LOCK_STATUS, () => [])] };
}

/**
 * The plan of `lock break`: reads the lock again and removes it only if it is
 * still the one the user confirmed (same token) and its holder's session is
 * still gone.
 */
export function lockBreakPlan(site: VolumeSite, token: string | null): Plan {
  const phase = statusPhase(site, PHASE_LOCK_BREAK, (host, facts) => {
    const st = readStatus(site, host, facts);
    if (!st) return [command(releaseArgv(site.lockFile, { token: token ?? '<token of the lock read at run time>' }), 'remove the lock if it still carries that token')];
    const d = breakDecision(site, st);
    if (d.kind === 'free') return [];
    if (d.kind === 'refuse') throw d.error;
    if (token !== null && d.token !== token) throw new OperationError(`the storage lock on ${site.meta} changed since it was read: now held by ${st.holder ?? 'another holder'}`, ['Nothing was changed. Look again: enssib lock status']);
    return [command(releaseArgv(site.lockFile, { token: d.token }), `remove the lock held by ${st.holder ?? 'an unknown holder'}`)];
  });
  return { title: 'lock break', mutating: true, phases: [phase] };
}

function statusLines(site: VolumeSite, st: LockStatus): string[] {
  if (!st.held) return [`The storage lock on ${site.meta} is free (${site.lockFile}).`];
  const session =
    st.alive === 'yes'
      ? `its ssh session (sshd pid ${st.sessionPid}) on ${site.meta} is alive: the command is running`
      : st.alive === 'no'
        ? `its ssh session (sshd pid ${st.sessionPid}) on ${site.meta} is gone: the lock is stale (enssib lock break removes it)`
        : `whether its command still runs is unknown (the lock does not name an ssh session)`;
  return [`The storage lock on ${site.meta} (${site.lockFile}) is held by ${st.holder ?? 'an unknown holder'}.`, `  ${session}`];
}

async function currentStatus(ctx: Context, site: VolumeSite): Promise<LockStatus> {
  const report: RunReport = await runPlan(lockStatusPlan(site), { mode: 'server', concurrency: 1, hosts: ctx.hosts(), ...runnerContext(ctx) });
  const o = report.phases[0]?.hosts[0];
  if (o?.status === 'failed') throw new OperationError(o.error?.message ?? `${site.meta}: cannot read the storage lock`, o.error?.details ?? []);
  const st = readStatus(site, site.meta, report.state.facts(PHASE_LOCK_STATUS, site.meta) ?? null);
  if (!st) throw new OperationError(`${site.meta}: the storage lock could not be read`);
  return st;
}

export async function lockStatusCommand(ctx: Context, _inv: Invocation): Promise<number> {
  const site = volumeSite(ctx.inventory());
  if (ctx.opts.dryRun === 'client') {
    await execute(ctx, lockStatusPlan(site));
    return ExitCode.ok;
  }
  const st = await currentStatus(ctx, site);
  ctx.out.result(
    () => ({ lock: { host: site.meta, file: site.lockFile, ...st } }),
    () => statusLines(site, st),
  );
  return ExitCode.ok;
}

export async function lockBreakCommand(ctx: Context, _inv: Invocation): Promise<number> {
  const site = volumeSite(ctx.inventory());
  if (ctx.opts.dryRun === 'client') {
    await execute(ctx, lockBreakPlan(site, null));
    return ExitCode.ok;
  }
  const st = await currentStatus(ctx, site);
  const d = breakDecision(site, st);
  if (d.kind === 'free') {
    ctx.out.result(
      () => ({ lock: { host: site.meta, file: site.lockFile, outcome: 'free' } }),
      () => statusLines(site, st),
    );
    return ExitCode.ok;
  }
  if (d.kind === 'refuse') throw d.error;
  if (ctx.opts.dryRun === false) {
    await ctx.prompt.confirm(
      `Remove the storage lock on ${site.meta} held by ${st.holder ?? 'an unknown holder'}${st.alive === 'unknown' ? ' (whether its command still runs is unknown)' : ' (its ssh session is gone)'}?`,
    );
  }
  const report = await execute(ctx, lockBreakPlan(site, d.token), {
    extra: (r) => {
      const ok = r.mode === 'apply' && !r.stoppedAt && r.exitCode === 0;
      return { json: { lock: { host: site.meta, file: site.lockFile, outcome: ok ? 'removed' : 'kept' } }, text: ok ? ['', `The storage lock on ${site.meta} is removed.`] : [] };
    },
  });
  const failed = report.phases[0]?.hosts[0];
  if (report.mode === 'apply' && failed?.status === 'failed') throw new OperationError(failed.error?.message ?? 'lock break failed', failed.error?.details ?? []);
  return report.exitCode;
}
