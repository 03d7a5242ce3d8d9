import type { Context } from '../context.js';
import { progressObserver } from '../ui/progress.js';
import { reportJson, planLines, summaryLines } from '../ui/report.js';
import { journalEntry, writeJournal } from './journal.js';
import { runPlan, type RunnerOptions } from './runner.js';
import type { Plan, RunReport } from './types.js';

/** What a use case adds to the printed result: JSON fields merged into the report, text lines after the summary. */
export interface ResultExtra {
  json?: Record<string, unknown>;
  text?: string[];
}

/**
 * Runs a plan the way the global options say (apply, --dry-run, --dry-run=server),
 * prints the plan or the summary, and journals a real mutating run.
 */
export async function execute(ctx: Context, plan: Plan, opts: { extra?: (report: RunReport) => ResultExtra } = {}): Promise<RunReport> {
  const mode = ctx.opts.dryRun === false ? 'apply' : ctx.opts.dryRun;
  const report = await runPlan(plan, {
    mode,
    concurrency: ctx.opts.concurrency,
    hosts: ctx.hosts(),
    ...runnerContext(ctx),
  });
  if (mode === 'apply' && plan.mutating) writeJournal(ctx, journalEntry(report));
  const extra = opts.extra?.(report) ?? {};
  ctx.out.result(
    () => ({ ...(reportJson(report) as Record<string, unknown>), ...(extra.json ?? {}) }),
    () => [...(mode === 'apply' ? summaryLines(report, ctx.out) : planLines(report, ctx.out)), ...(extra.text ?? [])],
  );
  return report;
}

/** What the runner takes from the context besides the mode: interruption signals and progress rendering. */
export function runnerContext(ctx: Context): Pick<RunnerOptions, 'signal' | 'cancel' | 'observer'> {
  const observer = progressObserver(ctx.renderer);
  return { signal: ctx.signal, cancel: ctx.cancel, ...(observer ? { observer } : {}) };
}
