import { asEnssibError, CommandError, EnssibError, ExitCode, InterruptedError, OperationError, tail } from '../errors.js';
import { mapLimit } from '../limit.js';
import type { HostPool } from '../remote/pool.js';
import type { Host, RunOptions } from '../remote/types.js';
import { describeAction, describeCheck } from './describe.js';
import { Values } from './probe.js';
import type { RunEvent, RunObserver } from './events.js';
import type { Action, ErrorReport, Facts, Finding, HostOutcome, Phase, PhaseOutcome, Plan, RunMode, RunReport, RunState, UndoOutcome } from './types.js';
import { LOCAL } from './types.js';

export interface RunnerOptions {
  mode: RunMode;
  concurrency: number;
  hosts: HostPool;
  /** First interruption: no new command starts; interruptible commands (waits) are cancelled. */
  signal?: AbortSignal;
  /** Second interruption: the commands in flight are cancelled too (stopped on their hosts). */
  cancel?: AbortSignal;
  /** Receives the run's events (progress rendering). */
  observer?: RunObserver;
}

const phaseId = (p: Phase) => p.id ?? p.title;
const factKey = (phase: string, host: string) => `${phase}\u0000${host}`;

/**
 * Runs a plan phase by phase; inside a phase, hosts run in parallel under the
 * concurrency limit. A client dry run contacts nothing; a server dry run runs
 * only the read-only checks, and stops planning after the first phase that
 * would change something later phases read ("known after apply").
 *
 * When a phase that does not tolerate failures fails, or the run is
 * interrupted, what earlier phases did is undone (newest first) where they say
 * how. The `always` phases run last whatever happened, and nothing — not an
 * undo that throws, not a bug in a plan — keeps them from running.
 */
export async function runPlan(plan: Plan, opts: RunnerOptions): Promise<RunReport> {
  const started = Date.now();
  const facts = new Map<string, Facts>();
  const undo: UndoOutcome[] = [];
  const state: RunState = { facts: (phase, host) => facts.get(factKey(phase, host)), values: new Values(), undone: undo };
  const phases: PhaseOutcome[] = [];
  const excluded = new Set<string>();
  const emit = (e: RunEvent) => opts.observer?.event(e);
  const ctx: PhaseContext = { opts, state, facts, emit, excluded, unknownAfter: null };
  let stoppedAt: string | undefined;
  let interrupted = false;
  let internal: ErrorReport | undefined;
  // Connections to hosts needed later are opened now, in the background; a failure here is ignored (the phase that needs the host reports it).
  const warming = opts.mode === 'client' ? [] : (plan.prefetch ?? []).filter((h) => h !== LOCAL).map((h) => opts.hosts.get(h).exec(['true'], { sudo: false, timeoutMs: 60_000 }).catch(() => undefined));

  try {
    for (const [i, phase] of plan.phases.entries()) {
      if (opts.signal?.aborted) {
        interrupted = true;
        stoppedAt ??= phases.at(-1)?.title ?? phase.title;
        break;
      }
      const result = await runPhase(phase, 'phase', ctx);
      phases.push(result);
      const failed = result.hosts.filter((o) => o.status === 'failed');
      if (opts.signal?.aborted || failed.some((o) => o.error?.exitCode === ExitCode.interrupted)) {
        interrupted = true;
        stoppedAt = phase.title;
        break;
      }
      if (failed.length > 0 && !plan.readOnly) {
        if (!phase.continueOnError) {
          stoppedAt = phase.title;
          break;
        }
        failed.forEach((o) => excluded.add(o.host));
      }
      if (opts.mode === 'server' && !phase.independent && ctx.unknownAfter === null && result.hosts.some((h) => h.status === 'would-change') && i < plan.phases.length - 1) {
        ctx.unknownAfter = phase.title;
      }
    }
  } catch (e) {
    internal = errorReport(e);
    stoppedAt ??= 'internal error';
  }

  if (opts.mode === 'apply' && stoppedAt) {
    try {
      await undoAll(plan, phases, ctx, undo);
    } catch (e) {
      internal ??= errorReport(e);
    }
  }

  // Cleanup phases run whatever happened, interruption included (no interruption signal reaches them).
  const cleanup: PhaseContext = { ...ctx, opts: { ...opts, signal: undefined, cancel: undefined }, unknownAfter: null, excluded: new Set() };
  for (const phase of plan.always ?? []) {
    try {
      phases.push(await runPhase(phase, 'always', cleanup));
    } catch (e) {
      const error = errorReport(e);
      phases.push({ id: phaseId(phase), title: phase.title, hosts: phase.hosts.map((h) => ({ host: h, status: 'failed', checks: [], actions: [], error, durationMs: 0 })) });
    }
  }

  await Promise.all(warming);
  const all = phases.flatMap((p) => p.hosts);
  const anyFailed = all.some((o) => o.status === 'failed') || internal !== undefined;
  const anyOk = all.some((o) => o.status === 'done' || o.status === 'unchanged');
  const exitCode = interrupted ? ExitCode.interrupted : stoppedAt ? ExitCode.failed : anyFailed ? (anyOk ? ExitCode.partial : ExitCode.failed) : ExitCode.ok;
  if (internal) {
    phases.push({ id: 'internal error', title: 'internal error', hosts: [{ host: LOCAL, status: 'failed', checks: [], actions: [], error: internal, durationMs: 0 }] });
  }
  return {
    plan: plan.title,
    mode: opts.mode,
    mutating: plan.mutating,
    phases,
    undo,
    findings: findingsOf(phases, plan.readOnly === true),
    exitCode,
    ...(interrupted ? { interrupted } : {}),
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    ...(stoppedAt ? { stoppedAt } : {}),
    state,
  };
}

interface PhaseContext {
  opts: RunnerOptions;
  state: RunState;
  facts: Map<string, Facts>;
  emit: (e: RunEvent) => void;
  /** Hosts that failed in a continueOnError phase: left out of later phases. */
  excluded: Set<string>;
  /** Server dry run: the first phase that would change something (later phases are known after apply). */
  unknownAfter: string | null;
}

async function runPhase(phase: Phase, kind: 'phase' | 'always', ctx: PhaseContext): Promise<PhaseOutcome> {
  const id = phaseId(phase);
  ctx.emit({ type: 'phase-start', id, title: phase.title, hosts: phase.hosts, kind });
  const outcomes = new Map<string, HostOutcome>();
  const record = (o: HostOutcome) => {
    outcomes.set(o.host, o);
    ctx.emit({ type: 'host-end', phase: id, outcome: o });
  };
  for (const h of phase.hosts.filter((x) => ctx.excluded.has(x))) record({ host: h, status: 'skipped', checks: [], actions: [], note: 'failed in an earlier phase', durationMs: 0 });
  await mapLimit(
    phase.hosts.filter((h) => !ctx.excluded.has(h)),
    phase.concurrency ?? ctx.opts.concurrency,
    async (h) => {
      ctx.emit({ type: 'host-start', phase: id, host: h });
      record(ctx.unknownAfter !== null ? afterApply(phase, h, ctx) : await runHost(phase, h, ctx));
    },
  );
  const result: PhaseOutcome = { id, title: phase.title, hosts: phase.hosts.map((h) => outcomes.get(h) as HostOutcome) };
  ctx.emit({ type: 'phase-end', outcome: result });
  await ctx.opts.observer?.settle?.();
  return result;
}

/** A server dry run's host after a phase that would change something: its checks are listed, not run. */
function afterApply(phase: Phase, name: string, ctx: PhaseContext): HostOutcome {
  const host = name === LOCAL ? null : ctx.opts.hosts.get(name);
  return {
    host: name,
    status: 'after-apply',
    checks: (phase.checks?.(name) ?? []).map((c) => describeCheck(host, c)),
    actions: [],
    note: `known after apply: it depends on "${ctx.unknownAfter}"`,
    durationMs: 0,
  };
}

async function runHost(phase: Phase, name: string, ctx: PhaseContext): Promise<HostOutcome> {
  const { opts } = ctx;
  const t0 = Date.now();
  const out: HostOutcome = { host: name, status: 'planned', checks: [], actions: [], durationMs: 0 };
  let completed = 0;
  let actionStarted = false;
  try {
    if (opts.signal?.aborted) throw new InterruptedError();
    const host = name === LOCAL ? null : opts.hosts.get(name);
    const checks = phase.checks?.(name) ?? [];
    out.checks = checks.map((c) => describeCheck(host, c));
    let gathered: Facts | null = null;
    if (opts.mode !== 'client' && checks.length > 0) {
      if (!host) throw new EnssibError(`phase "${phase.title}": checks need a host`);
      // Reads are cancelled at the first interruption: nothing is lost.
      gathered = await gather(host, checks, opts.signal);
      ctx.facts.set(factKey(phaseId(phase), name), gathered);
    }
    if (gathered && phase.verify) {
      out.findings = phase.verify(name, gathered, ctx.state);
      const errors = out.findings.filter((f) => f.severity === 'error');
      if (errors.length > 0) throw new OperationError(`${name}: ${errors.map((f) => f.found).join('; ')}`, errors.flatMap((f) => f.fix));
    }
    phase.decide?.(name, gathered, ctx.state);
    const actions = phase.plan?.(name, gathered, ctx.state) ?? [];
    out.actions = actions.map((a) => describeAction(host, a));
    if (actions.length === 0) out.status = opts.mode === 'client' && checks.length > 0 ? 'planned' : 'unchanged';
    else if (opts.mode === 'client') out.status = 'planned';
    else if (opts.mode === 'server') out.status = 'would-change';
    else {
      let changed = false;
      const output: string[] = [];
      const notified = new Set<string>();
      const run = async (a: Action) => {
        if (opts.signal?.aborted) throw new InterruptedError(`interrupted before: ${describeAction(host, a).split('\n')[0]}`);
        const signal = a.kind === 'command' && a.interruptible ? anySignal(opts.signal, opts.cancel) : opts.cancel;
        actionStarted = true;
        const r = await execAction(host, a, signal);
        completed++;
        changed = r.changed || changed;
        if (r.changed && a.kind !== 'task') a.notify?.forEach((n) => notified.add(n));
        if (r.stdout) output.push(r.stdout.trimEnd());
      };
      for (const a of actions) await run(a);
      for (const [handler, actionsOf] of Object.entries(phase.handlers ?? {})) {
        if (!notified.has(handler)) continue;
        const more = actionsOf(name);
        out.actions.push(...more.map((a) => describeAction(host, a)));
        for (const a of more) await run(a);
      }
      out.status = changed ? 'done' : 'unchanged';
      if (output.length > 0) out.output = output.join('\n').slice(0, 4096);
    }
  } catch (e) {
    if (e instanceof InterruptedError && !actionStarted) {
      // Interrupted before this host's first action: nothing changed here.
      out.status = 'skipped';
      out.note = 'interrupted before it started';
    } else {
      out.status = 'failed';
      out.error = errorReport(e);
      if (completed > 0) out.partial = true;
    }
  }
  out.durationMs = Date.now() - t0;
  return out;
}

/** A phase's read-only checks on one host, in one round trip. */
function gather(host: Host, checks: string[][], signal?: AbortSignal): Promise<Facts> {
  return host.probe(checks, { sudo: true, ...(signal ? { signal } : {}) });
}

function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  return present.length <= 1 ? present[0] : AbortSignal.any(present);
}

/** Runs one action; resolves whether it changed anything, and what a command printed. */
async function execAction(host: Host | null, a: Action, signal?: AbortSignal): Promise<{ changed: boolean; stdout?: string }> {
  if (a.kind === 'task') {
    const r = await a.run();
    return { changed: r ? r.changed : true, ...(r?.message ? { stdout: r.message } : {}) };
  }
  if (!host) throw new EnssibError(`"${a.kind}" action needs a host`);
  if (a.kind === 'file') return { changed: (await host.upload(a.file)) === 'written' };
  const opts: RunOptions = {
    ...(a.sudo !== undefined ? { sudo: a.sudo } : {}),
    ...(a.timeoutMs ? { timeoutMs: a.timeoutMs } : {}),
    ...(a.input !== undefined ? { input: a.input } : {}),
    ...(signal ? { signal } : {}),
  };
  const r = await host.exec(a.argv, opts);
  if (!(a.okCodes ?? [0]).includes(r.exitCode)) throw new CommandError(host.name, host.describe(a.argv, opts), r.exitCode, r.stderr);
  return { changed: true, stdout: r.stdout };
}

/**
 * Takes back what the run did, newest phase first: the hosts where a phase
 * was done, and those where it failed when it may have done part of its work
 * (`undoFailed`, or some of its actions ran). Undo is cleanup: no interruption
 * stops it.
 */
async function undoAll(plan: Plan, phases: PhaseOutcome[], ctx: PhaseContext, undo: UndoOutcome[]): Promise<void> {
  const todo: { phase: Phase; outcome: HostOutcome }[] = [];
  for (let i = phases.length - 1; i >= 0; i--) {
    const phase = plan.phases[i] as Phase;
    if (!phase.undo) continue;
    for (const o of (phases[i] as PhaseOutcome).hosts) {
      if (o.status === 'done' || (o.status === 'failed' && (phase.undoFailed || o.partial))) todo.push({ phase, outcome: o });
    }
  }
  if (todo.length === 0) return;
  ctx.emit({ type: 'undo-start', steps: todo.length });
  for (const t of todo) {
    const u = await undoHost(t.phase, t.outcome, ctx);
    undo.push(u);
    ctx.emit({ type: 'undo-end', outcome: u });
  }
  await ctx.opts.observer?.settle?.();
}

async function undoHost(phase: Phase, done: HostOutcome, ctx: PhaseContext): Promise<UndoOutcome> {
  const name = done.host;
  const out: UndoOutcome = { phase: phase.title, host: name, ok: true, actions: [] };
  try {
    const host = name === LOCAL ? null : ctx.opts.hosts.get(name);
    const checks = phase.undoChecks?.(name) ?? [];
    let now: Facts | null = null;
    if (checks.length > 0) {
      if (!host) throw new EnssibError(`phase "${phase.title}": undo checks need a host`);
      now = await gather(host, checks);
    }
    const actions = phase.undo?.(name, ctx.state, now) ?? [];
    out.actions = actions.map((a) => describeAction(host, a));
    for (const a of actions) await execAction(host, a);
  } catch (e) {
    out.ok = false;
    out.error = errorReport(e);
    out.left = done.actions;
  }
  return out;
}

/** The findings of the run; in read-only mode a host that failed is one too (it could not be checked). */
function findingsOf(phases: PhaseOutcome[], readOnly: boolean): Finding[] {
  return phases.flatMap((p) =>
    p.hosts.flatMap((h): Finding[] => {
      const own = h.findings ?? [];
      if (!readOnly || h.status !== 'failed' || own.some((f) => f.severity === 'error') || !h.error) return own;
      const found = h.error.message.startsWith(`${h.host}: `) ? h.error.message.slice(h.host.length + 2) : h.error.message;
      return [...own, { severity: 'error', host: h.host, check: p.id, found, why: `"${p.title}" could not be checked on ${h.host}`, fix: h.error.details }];
    }),
  );
}

export function errorReport(e: unknown): ErrorReport {
  if (e instanceof CommandError) {
    return { message: e.message, details: tail(e.stderr, 8), command: e.command, remoteExitCode: e.code, exitCode: e.exitCode };
  }
  const err = asEnssibError(e);
  return { message: err.message, details: err.details, exitCode: err.exitCode };
}
