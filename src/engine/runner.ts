import { Writable } from 'node:stream';
import { CommandError, EnssibError, ExitCode, InterruptedError, interruptedExitCode, OperationError } from '../errors.js';
import { mapLimit } from '../limit.js';
import type { HostPool } from '../remote/pool.js';
import type { Host, RunOptions, RunResult } from '../remote/types.js';
import { describeAction, describeCheck } from './describe.js';
import { errorReport } from './error-report.js';
import { Values } from './probe.js';
import type { RunEvent, RunObserver } from './events.js';
import type { Action, CommandAction, ErrorReport, Facts, Finding, HostOutcome, ItemResult, ItemPlan, PerItem, Phase, PhaseOutcome, Plan, RunMode, RunReport, RunState, UndoOutcome } from './types.js';
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
 *
 * Per-item work (`plan.items`) runs between the phases and the `always`
 * phases: each item a sequence of its own with its own undo and cleanup (see
 * `runItems`).
 */
export async function runPlan(plan: Plan, opts: RunnerOptions): Promise<RunReport> {
  const started = Date.now();
  const facts = new Map<string, Facts>();
  const undo: UndoOutcome[] = [];
  const state: RunState = { facts: (phase, host) => facts.get(factKey(phase, host)), values: new Values(), undone: undo };
  const emit = (e: RunEvent) => opts.observer?.event(e);
  const ctx: PhaseContext = { opts, state, facts, emit, excluded: new Set(), unknownAfter: null };
  // Connections to hosts needed later are opened now, in the background; a failure here is ignored (the phase that needs the host reports it).
  const warming = opts.mode === 'client' ? [] : (plan.prefetch ?? []).filter((h) => h !== LOCAL).map((h) => opts.hosts.get(h).exec(['true'], { sudo: false, timeoutMs: 60_000 }).catch(() => undefined));

  const main = await runSequence(plan.phases, plan.readOnly === true, plan.items !== undefined, ctx);
  const phases = [...main.phases];
  let { stoppedAt, interrupted, internal } = main;

  let items: ItemResult[] | undefined;
  const itemStates = new Map<string, RunState>();
  if (plan.items) {
    const section = plan.items;
    if (stoppedAt) {
      items = section.items.map((i) => ({ item: i.name, status: 'skipped', durationMs: 0 }));
    } else {
      const ran = await runItems(section, plan.readOnly === true, ctx);
      items = ran.map((r) => r.outcome);
      for (const r of ran) {
        phases.push(...r.phases);
        undo.push(...r.undo);
        if (r.state) itemStates.set(r.outcome.item, r.state);
      }
      if (items.some((i) => i.status === 'interrupted' || (i.status === 'skipped' && opts.signal?.aborted))) {
        interrupted = true;
        stoppedAt = section.title;
      }
    }
  }

  if (opts.mode === 'apply' && stoppedAt) {
    try {
      await undoAll(plan.phases, main.phases, ctx, undo);
    } catch (e) {
      internal ??= errorReport(e);
    }
  }

  phases.push(...(await runAlways(plan.always ?? [], ctx)));

  await Promise.all(warming);
  const all = phases.flatMap((p) => p.hosts);
  const anyFailed = all.some((o) => o.status === 'failed') || internal !== undefined;
  const anyOk = all.some((o) => o.status === 'done' || o.status === 'unchanged');
  // Per-item work where every item failed is a failure, not a partial one (the plan's own phases, such as a lock, do not count as success).
  const everyItemFailed = items !== undefined && items.length > 0 && items.every((i) => i.status === 'failed');
  const exitCode = interrupted ? interruptedExitCode(opts.signal) : stoppedAt ? ExitCode.failed : anyFailed ? (anyOk && !everyItemFailed ? ExitCode.partial : ExitCode.failed) : ExitCode.ok;
  if (internal) {
    phases.push({ id: 'internal error', title: 'internal error', hosts: [{ host: LOCAL, status: 'failed', checks: [], actions: [], error: internal, durationMs: 0 }] });
  }
  return {
    plan: plan.title,
    mode: opts.mode,
    mutating: plan.mutating,
    phases,
    undo,
    ...(items ? { items, itemStates } : {}),
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
  /** Per-item work: the item these phases run for. */
  item?: string;
}

interface Sequence {
  phases: PhaseOutcome[];
  /** The phase that stopped the sequence (failure or interruption). */
  stoppedAt?: string;
  interrupted: boolean;
  /** A bug (a plan or parser that threw outside a host's work). */
  internal?: ErrorReport;
}

/**
 * Runs phases in order until one fails (unless it tolerates failures, or the
 * plan is read-only) or the run is interrupted. `more`: work follows these
 * phases (a server dry run then says "known after apply" there too).
 */
async function runSequence(defs: Phase[], readOnly: boolean, more: boolean, ctx: PhaseContext): Promise<Sequence> {
  const { opts } = ctx;
  const seq: Sequence = { phases: [], interrupted: false };
  try {
    for (const [i, phase] of defs.entries()) {
      if (opts.signal?.aborted) {
        seq.interrupted = true;
        seq.stoppedAt ??= seq.phases.at(-1)?.title ?? phase.title;
        break;
      }
      const result = await runPhase(phase, 'phase', ctx);
      seq.phases.push(result);
      const failed = result.hosts.filter((o) => o.status === 'failed');
      if (opts.signal?.aborted || failed.some((o) => o.error?.exitCode === ExitCode.interrupted)) {
        seq.interrupted = true;
        seq.stoppedAt = phase.title;
        break;
      }
      if (failed.length > 0 && !readOnly) {
        if (!phase.continueOnError) {
          seq.stoppedAt = phase.title;
          break;
        }
        failed.forEach((o) => ctx.excluded.add(o.host));
      }
      if (opts.mode === 'server' && !phase.independent && ctx.unknownAfter === null && result.hosts.some((h) => h.status === 'would-change') && (more || i < defs.length - 1)) {
        ctx.unknownAfter = phase.title;
      }
    }
  } catch (e) {
    seq.internal = errorReport(e);
    seq.stoppedAt ??= 'internal error';
  }
  return seq;
}

/** Cleanup phases: they run whatever happened, interruption included (no interruption signal reaches them), and nothing keeps one from running. */
async function runAlways(defs: Phase[], ctx: PhaseContext): Promise<PhaseOutcome[]> {
  const cleanup: PhaseContext = { ...ctx, opts: { ...ctx.opts, signal: undefined, cancel: undefined }, unknownAfter: null, excluded: new Set() };
  const out: PhaseOutcome[] = [];
  for (const phase of defs) {
    try {
      out.push(await runPhase(phase, 'always', cleanup));
    } catch (e) {
      const error = errorReport(e);
      out.push({ id: phaseId(phase), title: phase.title, ...(ctx.item !== undefined ? { item: ctx.item } : {}), hosts: phase.hosts.map((h) => ({ host: h, status: 'failed', checks: [], actions: [], error, durationMs: 0 })) });
    }
  }
  return out;
}

interface ItemRun {
  outcome: ItemResult;
  phases: PhaseOutcome[];
  undo: UndoOutcome[];
  /** The item's own state (absent when it never started). */
  state?: RunState;
}

/**
 * Per-item work: each item is a sequence of its own, a few at once. An item
 * that stops (failure or interruption) has what it did undone; an item that
 * started has its `always` phases run, whatever happened to it or to the
 * others. Once the run is interrupted, no new item starts.
 */
async function runItems(section: PerItem, readOnly: boolean, ctx: PhaseContext): Promise<ItemRun[]> {
  ctx.emit({ type: 'items-start', title: section.title, items: section.items.map((i) => i.name) });
  const runs = await mapLimit(section.items, section.concurrency ?? 1, async (item): Promise<ItemRun> => {
    if (ctx.opts.signal?.aborted) {
      const outcome: ItemResult = { item: item.name, status: 'skipped', durationMs: 0 };
      ctx.emit({ type: 'item-end', outcome });
      return { outcome, phases: [], undo: [] };
    }
    const r = await runItem(item, readOnly, ctx);
    ctx.emit({ type: 'item-end', outcome: r.outcome });
    return r;
  });
  const outcomes = runs.map((r) => r.outcome);
  ctx.emit({ type: 'items-end', outcomes });
  await ctx.opts.observer?.settle?.();
  return runs;
}

async function runItem(item: ItemPlan, readOnly: boolean, parent: PhaseContext): Promise<ItemRun> {
  const t0 = Date.now();
  parent.emit({ type: 'item-start', item: item.name });
  const facts = new Map<string, Facts>();
  const undo: UndoOutcome[] = [];
  const state: RunState = { facts: (phase, host) => facts.get(factKey(phase, host)) ?? parent.state.facts(phase, host), values: new Values(parent.state.values), undone: undo };
  const ctx: PhaseContext = { ...parent, state, facts, excluded: new Set(parent.excluded), item: item.name };
  const seq = await runSequence(item.phases, readOnly, false, ctx);
  let internal = seq.internal;
  if (parent.opts.mode === 'apply' && seq.stoppedAt) {
    try {
      await undoAll(item.phases, seq.phases, ctx, undo);
    } catch (e) {
      internal ??= errorReport(e);
    }
  }
  const phases = [...seq.phases, ...(await runAlways(item.always ?? [], ctx))];
  const hosts = phases.flatMap((p) => p.hosts);
  const failed = hosts.find((h) => h.status === 'failed');
  const status: ItemResult['status'] = seq.interrupted
    ? 'interrupted'
    : failed || internal || undo.some((u) => !u.ok)
      ? 'failed'
      : hosts.some((h) => h.status === 'done')
        ? 'done'
        : hosts.some((h) => h.status === 'would-change')
          ? 'would-change'
          : hosts.some((h) => h.status === 'planned')
            ? 'planned'
            : 'unchanged';
  const error = internal ?? failed?.error;
  const outcome: ItemResult = { item: item.name, status, ...(seq.stoppedAt ? { stoppedAt: seq.stoppedAt } : {}), ...(error ? { error } : {}), durationMs: Date.now() - t0 };
  if (internal) phases.push({ id: 'internal error', title: 'internal error', item: item.name, hosts: [{ host: LOCAL, status: 'failed', checks: [], actions: [], error: internal, durationMs: 0 }] });
  return { outcome, phases, undo, state };
}

async function runPhase(phase: Phase, kind: 'phase' | 'always', ctx: PhaseContext): Promise<PhaseOutcome> {
  const id = phaseId(phase);
  const item = ctx.item !== undefined ? { item: ctx.item } : {};
  ctx.emit({ type: 'phase-start', id, title: phase.title, hosts: phase.hosts, kind, ...item });
  const outcomes = new Map<string, HostOutcome>();
  const record = (o: HostOutcome) => {
    outcomes.set(o.host, o);
    ctx.emit({ type: 'host-end', phase: id, outcome: o, ...item });
  };
  for (const h of phase.hosts.filter((x) => ctx.excluded.has(x))) record({ host: h, status: 'skipped', checks: [], actions: [], note: 'failed in an earlier phase', durationMs: 0 });
  await mapLimit(
    phase.hosts.filter((h) => !ctx.excluded.has(h)),
    phase.concurrency ?? ctx.opts.concurrency,
    async (h) => {
      ctx.emit({ type: 'host-start', phase: id, host: h, ...item });
      record(ctx.unknownAfter !== null ? afterApply(phase, h, ctx) : await runHost(phase, h, ctx));
    },
  );
  const result: PhaseOutcome = { id, title: phase.title, ...item, hosts: phase.hosts.map((h) => outcomes.get(h) as HostOutcome) };
  ctx.emit({ type: 'phase-end', outcome: result });
  // Items run side by side: their progress settles once at the end of the per-item work.
  if (ctx.item === undefined) await ctx.opts.observer?.settle?.();
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
      gathered = await gather(host, checks, phase.checksTimeoutMs, opts.signal);
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
    if (opts.mode !== 'apply') out.actions.push(...handlerLines(phase, name, host, actions));
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
        const r = await execAction(host, a, signal, (done, total) => ctx.emit({ type: 'progress', phase: phaseId(phase), host: name, ...(ctx.item !== undefined ? { item: ctx.item } : {}), done, total }));
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

/** A dry run shows the handlers its actions would notify, each marked as conditional. */
function handlerLines(phase: Phase, name: string, host: Host | null, actions: Action[]): string[] {
  return Object.entries(phase.handlers ?? {})
    .filter(([handler]) => actions.some((a) => a.kind !== 'task' && a.notify?.includes(handler)))
    .flatMap(([handler, actionsOf]) => actionsOf(name).map((a) => `${describeAction(host, a)}   # handler "${handler}": only if what notifies it changed`));
}

/** A phase's read-only checks on one host, in one round trip. */
function gather(host: Host, checks: string[][], timeoutMs?: number, signal?: AbortSignal): Promise<Facts> {
  return host.probe(checks, { sudo: true, ...(timeoutMs ? { timeoutMs } : {}), ...(signal ? { signal } : {}) });
}

function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  return present.length <= 1 ? present[0] : AbortSignal.any(present);
}

/** Runs one action; resolves whether it changed anything, and what a command printed. */
async function execAction(host: Host | null, a: Action, signal?: AbortSignal, progress?: (done: number, total: number) => void): Promise<{ changed: boolean; stdout?: string }> {
  if (a.kind === 'task') {
    const r = await a.run(signal);
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
  if (a.reconnect) await host.close();
  const r = a.progress ? await streamed(host, a.argv, opts, a.progress, progress) : await host.exec(a.argv, opts);
  if (!(a.okCodes ?? [0]).includes(r.exitCode)) throw new CommandError(host.name, host.describe(a.argv, opts), r.exitCode, r.stderr);
  a.result?.(r);
  return { changed: true, ...(a.quiet ? {} : { stdout: r.stdout }) };
}

/** What a streamed command's result sees of the lines that are not progress (its final report), at most. */
const STREAM_KEPT_MAX = 64 * 1024;

/** A command whose stdout lines say how far it got: streamed, each line parsed as it comes; only the other lines are kept (up to 64 KiB). */
async function streamed(host: Host, argv: string[], opts: RunOptions, p: NonNullable<CommandAction['progress']>, report?: (done: number, total: number) => void): Promise<RunResult> {
  const { input: _none, ...rest } = opts;
  let partial = '';
  let kept = '';
  const take = (l: string) => {
    const done = p.parse(l.trim());
    if (done !== null) report?.(done, p.total);
    else if (l.trim() !== '' && kept.length + l.length < STREAM_KEPT_MAX) kept += `${l}\n`;
  };
  const lines = new Writable({
    write(chunk: Buffer, _enc, next) {
      const all = (partial + chunk.toString('utf8')).split('\n');
      partial = all.pop() ?? '';
      all.forEach(take);
      next();
    },
    final(next) {
      if (partial !== '') take(partial);
      partial = '';
      next();
    },
  });
  const r = await host.stream(argv, { ...rest, stdout: lines });
  if (partial !== '') take(partial);
  partial = '';
  return { exitCode: r.exitCode, stdout: kept, stderr: r.stderr, durationMs: r.durationMs };
}

/**
 * Takes back what a sequence did, newest phase first: the hosts where a phase
 * was done, and those where it failed when it may have done part of its work
 * (`undoFailed`, or some of its actions ran). Undo is cleanup: no interruption
 * stops it. `outcomes[i]` is the outcome of `defs[i]`.
 */
async function undoAll(defs: Phase[], outcomes: PhaseOutcome[], ctx: PhaseContext, undo: UndoOutcome[]): Promise<void> {
  const todo: { phase: Phase; outcome: HostOutcome }[] = [];
  for (let i = outcomes.length - 1; i >= 0; i--) {
    const phase = defs[i] as Phase;
    if (!phase.undo) continue;
    for (const o of (outcomes[i] as PhaseOutcome).hosts) {
      if (o.status === 'done' || (o.status === 'failed' && (phase.undoFailed || o.partial))) todo.push({ phase, outcome: o });
    }
  }
  if (todo.length === 0) return;
  ctx.emit({ type: 'undo-start', steps: todo.length, ...(ctx.item !== undefined ? { item: ctx.item } : {}) });
  for (const t of todo) {
    const u = await undoHost(t.phase, t.outcome, ctx);
    // A host with nothing to take back in this phase, decided without reading anything again, is not an undo step.
    if (u.ok && u.actions.length === 0 && !t.phase.undoChecks) continue;
    undo.push(u);
    ctx.emit({ type: 'undo-end', outcome: u });
  }
  if (ctx.item === undefined) await ctx.opts.observer?.settle?.();
}

async function undoHost(phase: Phase, done: HostOutcome, ctx: PhaseContext): Promise<UndoOutcome> {
  const name = done.host;
  const out: UndoOutcome = { phase: phase.title, host: name, ...(ctx.item !== undefined ? { item: ctx.item } : {}), ok: true, actions: [] };
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
