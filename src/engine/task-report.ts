import type { Context } from '../context.js';
import { reportJson } from '../ui/report.js';
import { journalEntry, writeJournal } from './journal.js';
import { Values } from './probe.js';
import { errorReport } from './error-report.js';
import type { HostStatus, PhaseOutcome, RunMode, RunReport, UndoOutcome } from './types.js';

/**
 * Commands whose work enssib does itself — against the API server, the registry
 * or the Docker engine — rather than as a plan's phases on hosts (service deploy,
 * service expose, secret create, image build and push) report it in the same
 * RunReport: one phase per kind of work, one entry per item (a service, an
 * object), so that their JSON result and journal record read like a plan's.
 */
export interface ItemOutcome {
  /** What the work was about: a service, "namespace/name"; shown where a plan shows a host. */
  item: string;
  status: HostStatus;
  actions: string[];
  /** Why it failed (any thrown value; reported with its message and details). */
  error?: unknown;
  note?: string;
  durationMs?: number;
}

export interface TaskPhase {
  title: string;
  items: ItemOutcome[];
}

export interface TaskRun {
  plan: string;
  mode: RunMode;
  /** Date.now() when the work started. */
  started: number;
  phases: TaskPhase[];
  exitCode: number;
  undo?: UndoOutcome[];
  stoppedAt?: string;
}

export function taskReport(run: TaskRun): RunReport {
  const phases: PhaseOutcome[] = run.phases.map((p) => ({
    id: p.title,
    title: p.title,
    hosts: p.items.map((i) => {
      return {
        host: i.item,
        status: i.status,
        checks: [],
        actions: i.actions,
        ...(i.error === undefined ? {} : { error: errorReport(i.error) }),
        ...(i.note ? { note: i.note } : {}),
        durationMs: Math.round(i.durationMs ?? 0),
      };
    }),
  }));
  return {
    plan: run.plan,
    mode: run.mode,
    mutating: true,
    phases,
    undo: run.undo ?? [],
    findings: [],
    exitCode: run.exitCode,
    startedAt: new Date(run.started).toISOString(),
    durationMs: Date.now() - run.started,
    ...(run.stoppedAt ? { stoppedAt: run.stoppedAt } : {}),
    state: { facts: () => undefined, values: new Values() },
  };
}

/** The run mode the global options ask for. */
export function runMode(ctx: Pick<Context, 'opts'>): RunMode {
  return ctx.opts.dryRun === false ? 'apply' : ctx.opts.dryRun;
}

/** Journals a real run, as `execute` does for plans. */
export function journalTaskRun(ctx: Pick<Context, 'inventory' | 'argv' | 'out' | 'signal'>, report: RunReport): void {
  if (report.mode === 'apply') writeJournal(ctx, journalEntry(report));
}

/** The report as one JSON document (as `execute` prints a plan's), with the command's own fields added. */
export function taskJson(report: RunReport, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...(reportJson(report) as Record<string, unknown>), ...fields };
}
