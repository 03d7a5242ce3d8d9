import { Listr, ListrLogger, ProcessOutput } from 'listr2';
import { EnssibError, ExitCode, InterruptedError, isEnssibError, CommandError, tail } from '../errors.js';
import type { HostPool } from '../remote/pool.js';
import type { Host } from '../remote/types.js';
import { describeAction, describeCheck } from './describe.js';
import type { Action, ErrorReport, Facts, HostOutcome, Phase, PhaseOutcome, Plan, RunMode, RunReport, RunState, UndoOutcome } from './types.js';
import { LOCAL } from './types.js';

export type ProgressRenderer = 'default' | 'simple' | 'silent';

export interface RunnerOptions {
  mode: RunMode;
  concurrency: number;
  hosts: HostPool;
  renderer: ProgressRenderer;
  signal?: AbortSignal;
}

/**
 * Runs a plan phase by phase; inside a phase, hosts run in parallel under the
 * concurrency limit. A client dry run contacts nothing; a server dry run runs
 * only the read-only checks. When a phase that does not tolerate failures
 * fails, what earlier phases did is undone (newest first) where they say how.
 */
export async function runPlan(plan: Plan, opts: RunnerOptions): Promise<RunReport> {
  const started = Date.now();
  const facts = new Map<string, Facts>();
  const state: RunState = { facts: (phase, host) => facts.get(`${phase}\u0000${host}`), values: new Map() };
  const phases: PhaseOutcome[] = [];
  const excluded = new Set<string>();
  let stoppedAt: string | undefined;
  let interrupted = false;
  // Connections to hosts needed later are opened now, in the background; a failure here is ignored (the phase that needs the host reports it).
  const warming = opts.mode === 'client' ? [] : (plan.prefetch ?? []).filter((h) => h !== LOCAL).map((h) => opts.hosts.get(h).exec(['true'], { sudo: false, timeoutMs: 60_000 }).catch(() => undefined));

  for (const phase of plan.phases) {
    if (opts.signal?.aborted) {
      interrupted = true;
      break;
    }
    const outcomes = new Map<string, HostOutcome>();
    const runnable = phase.hosts.filter((h) => !excluded.has(h));
    for (const h of phase.hosts.filter((x) => excluded.has(x))) {
      outcomes.set(h, { host: h, status: 'skipped', checks: [], actions: [], note: 'failed in an earlier phase', durationMs: 0 });
    }
    await progress(opts.renderer, phase.title, runnable, phase.concurrency ?? opts.concurrency, async (h) => {
      const o = await runHost(phase, h, state, facts, opts);
      outcomes.set(h, o);
      return o;
    });
    const result: PhaseOutcome = { title: phase.title, hosts: phase.hosts.map((h) => outcomes.get(h) as HostOutcome) };
    phases.push(result);
    const failed = result.hosts.filter((o) => o.status === 'failed');
    if (failed.some((o) => o.error?.exitCode === ExitCode.interrupted) || opts.signal?.aborted) {
      interrupted = true;
      stoppedAt = phase.title;
      break;
    }
    if (failed.length > 0) {
      if (!phase.continueOnError) {
        stoppedAt = phase.title;
        break;
      }
      failed.forEach((o) => excluded.add(o.host));
    }
  }

  const undo: UndoOutcome[] = [];
  state.undone = undo;
  if (stoppedAt && !interrupted && opts.mode === 'apply') {
    for (let i = phases.length - 1; i >= 0; i--) {
      const phase = plan.phases[i] as Phase;
      if (!phase.undo) continue;
      for (const o of (phases[i] as PhaseOutcome).hosts.filter((x) => x.status === 'done' || (phase.undoFailed && x.status === 'failed'))) {
        undo.push(await undoHost(phase, o.host, state, opts));
      }
    }
  }

  // Cleanup phases run whatever happened, interruption included (the abort signal is not passed on).
  for (const phase of plan.always ?? []) {
    const outcomes = new Map<string, HostOutcome>();
    await progress(opts.renderer, phase.title, phase.hosts, phase.concurrency ?? opts.concurrency, async (h) => {
      const o = await runHost(phase, h, state, facts, { ...opts, signal: undefined });
      outcomes.set(h, o);
      return o;
    });
    phases.push({ title: phase.title, hosts: phase.hosts.map((h) => outcomes.get(h) as HostOutcome) });
  }

  await Promise.all(warming);
  const all = phases.flatMap((p) => p.hosts);
  const anyFailed = all.some((o) => o.status === 'failed');
  const anyOk = all.some((o) => o.status === 'done' || o.status === 'unchanged');
  const exitCode = interrupted ? ExitCode.interrupted : stoppedAt ? ExitCode.failed : anyFailed ? (anyOk ? ExitCode.partial : ExitCode.failed) : ExitCode.ok;
  return {
    plan: plan.title,
    mode: opts.mode,
    mutating: plan.mutating,
    phases,
    undo,
    exitCode,
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    ...(stoppedAt ? { stoppedAt } : {}),
    state,
  };
}

async function runHost(phase: Phase, name: string, state: RunState, facts: Map<string, Facts>, opts: RunnerOptions): Promise<HostOutcome> {
  const started = Date.now();
  const host = name === LOCAL ? null : opts.hosts.get(name);
  const checks = phase.checks?.(name) ?? [];
  const out: HostOutcome = { host: name, status: 'planned', checks: checks.map((c) => describeCheck(host, c)), actions: [], durationMs: 0 };
  try {
    let gathered: Facts | null = null;
    if (opts.mode !== 'client' && checks.length > 0) {
      if (!host) throw new EnssibError(`phase "${phase.title}": checks need a host`);
      gathered = [];
      for (const c of checks) gathered.push(await host.exec(c, { sudo: true }));
      facts.set(`${phase.title}\u0000${name}`, gathered);
    }
    const actions = phase.plan(name, gathered, state);
    out.actions = actions.map((a) => describeAction(host, a));
    if (actions.length === 0) out.status = opts.mode === 'client' && checks.length > 0 ? 'planned' : 'unchanged';
    else if (opts.mode === 'client') out.status = 'planned';
    else if (opts.mode === 'server') out.status = 'would-change';
    else {
      let changed = false;
      const output: string[] = [];
      for (const a of actions) {
        if (opts.signal?.aborted) throw new InterruptedError();
        const r = await execAction(host, a);
        changed = r.changed || changed;
        if (r.stdout) output.push(r.stdout.trimEnd());
      }
      out.status = changed ? 'done' : 'unchanged';
      if (output.length > 0) out.output = output.join('\n').slice(0, 4096);
    }
  } catch (e) {
    out.status = 'failed';
    out.error = errorReport(e);
  }
  out.durationMs = Date.now() - started;
  return out;
}

/** Runs one action; resolves whether it changed anything, and what a command printed. */
async function execAction(host: Host | null, a: Action): Promise<{ changed: boolean; stdout?: string }> {
  if (a.kind === 'task') {
    const r = await a.run();
    return { changed: r ? r.changed : true, ...(r?.message ? { stdout: r.message } : {}) };
  }
  if (!host) throw new EnssibError(`"${a.kind}" action needs a host`);
  if (a.kind === 'file') return { changed: (await host.upload(a.file)) === 'written' };
  const opts = { ...(a.sudo !== undefined ? { sudo: a.sudo } : {}), ...(a.timeoutMs ? { timeoutMs: a.timeoutMs } : {}), ...(a.input !== undefined ? { input: a.input } : {}) };
  const r = await host.exec(a.argv, opts);
  if (!(a.okCodes ?? [0]).includes(r.exitCode)) throw new CommandError(host.name, host.describe(a.argv, opts), r.exitCode, r.stderr);
  return { changed: true, stdout: r.stdout };
}

async function undoHost(phase: Phase, name: string, state: RunState, opts: RunnerOptions): Promise<UndoOutcome> {
  const host = name === LOCAL ? null : opts.hosts.get(name);
  const actions = phase.undo?.(name, state) ?? [];
  const out: UndoOutcome = { phase: phase.title, host: name, ok: true, actions: actions.map((a) => describeAction(host, a)) };
  try {
    for (const a of actions) await execAction(host, a);
  } catch (e) {
    out.ok = false;
    out.error = errorReport(e);
  }
  return out;
}

export function errorReport(e: unknown): ErrorReport {
  if (e instanceof CommandError) {
    return { message: e.message, details: tail(e.stderr, 8), command: e.command, exitCode: e.code };
  }
  if (isEnssibError(e)) return { message: e.message, details: e.details, exitCode: e.exitCode };
  const err = e instanceof Error ? e : new Error(String(e));
  return { message: `internal error: ${err.message}`, details: (err.stack ?? '').split('\n').slice(1, 6) };
}

/** Progress goes to stderr: stdout carries only results (text or JSON). */
function stderrLogger(): ListrLogger<string> {
  return new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) });
}

/** Runs fn for each host under listr2 progress; host failures are reported by fn's outcome, never thrown out. */
async function progress(
  renderer: ProgressRenderer,
  title: string,
  hosts: string[],
  concurrency: number,
  fn: (host: string) => Promise<HostOutcome>,
): Promise<void> {
  if (hosts.length === 0) return;
  const list = new Listr(
    [
      {
        title,
        task: (_ctx, task) =>
          task.newListr(
            hosts.map((h) => ({
              title: h,
              task: async (_c, t) => {
                const o = await fn(h);
                t.title = `${h}: ${o.status}${o.status === 'failed' && o.error ? ` — ${o.error.message}` : ''}`;
                if (o.status === 'failed') throw new Error(o.error?.message ?? 'failed');
              },
            })),
            { concurrent: Math.max(1, concurrency), exitOnError: false },
          ),
      },
    ],
    {
      renderer,
      fallbackRenderer: 'simple',
      exitOnError: false,
      collectErrors: false,
      registerSignalListeners: false,
      rendererOptions: { logger: stderrLogger() },
      fallbackRendererOptions: { logger: stderrLogger() },
    },
  );
  await list.run();
}
