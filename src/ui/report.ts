import type { Finding, HostOutcome, ItemStatus, PhaseOutcome, RunReport } from '../engine/types.js';
import type { Output } from './output.js';

/**
 * The plan or run report as one JSON document (no internal state). A client
 * dry run ran nothing: it carries no start time or durations, so that the same
 * command prints the same document.
 */
export function reportJson(r: RunReport): unknown {
  const client = r.mode === 'client';
  return {
    plan: r.plan,
    mode: r.mode,
    dryRun: r.mode === 'apply' ? false : r.mode,
    exitCode: r.exitCode,
    ...(client ? {} : { startedAt: r.startedAt, durationMs: r.durationMs }),
    ...(r.stoppedAt ? { stoppedAt: r.stoppedAt } : {}),
    ...(r.interrupted ? { interrupted: true } : {}),
    phases: client ? r.phases.map((p) => ({ ...p, hosts: p.hosts.map(({ durationMs: _, ...h }) => h) })) : r.phases,
    undo: r.undo,
    ...(r.items ? { items: client ? r.items.map(({ durationMs: _, ...i }) => i) : r.items } : {}),
    findings: r.findings,
  };
}

const MARK: Record<HostOutcome['status'], string> = {
  done: 'done',
  unchanged: 'unchanged',
  failed: 'FAILED',
  skipped: 'skipped',
  'would-change': 'would change',
  planned: 'planned',
  'after-apply': 'known after apply',
};

/** A dry run: every phase, every host, the exact commands. */
export function planLines(r: RunReport, out: Output): string[] {
  const c = out.c;
  const head =
    r.mode === 'client'
      ? `Dry run of "${r.plan}": nothing was contacted; checks are listed, not run.`
      : `Dry run of "${r.plan}" (server): facts were read, nothing was changed.`;
  const lines = [c.bold(head)];
  r.phases.forEach((p, i) => {
    lines.push('', c.bold(`${i + 1}. ${phaseName(p)}`));
    for (const h of p.hosts) {
      const status = r.mode === 'server' ? `  ${statusColor(out, h.status)}` : '';
      lines.push(`  ${c.cyan(h.host)}${status}`);
      for (const ch of h.checks) lines.push(`    ${c.dim('check:')} ${ch}`);
      if (h.status === 'after-apply') lines.push(`    ${c.dim(`(${h.note ?? 'known after apply'})`)}`);
      else if (h.actions.length === 0 && h.checks.length === 0 && h.status !== 'failed') lines.push(`    ${c.dim('(nothing to do)')}`);
      for (const a of h.actions) lines.push(...a.split('\n').map((l) => `    ${c.dim('$')} ${l}`));
      if (h.status === 'failed' && h.error) lines.push(...errorLines(h, out));
    }
  });
  return [...lines, ...findingLines(r.findings, out)];
}

/** After a real run: per host done / unchanged / failed with command, exit code and stderr tail. */
export function summaryLines(r: RunReport, out: Output): string[] {
  const c = out.c;
  const lines = ['', c.bold(`Summary of "${r.plan}" (${(r.durationMs / 1000).toFixed(1)} s)`)];
  for (const p of r.phases) {
    lines.push(`  ${phaseName(p)}`);
    for (const h of p.hosts) {
      const note = h.note ? c.dim(` (${h.note})`) : '';
      lines.push(`    ${h.host.padEnd(10)} ${statusColor(out, h.status)}${note}`);
      if (r.mutating === false && h.output) lines.push(...h.output.split('\n').map((l) => `      ${c.dim(l)}`));
      if (h.status === 'failed') lines.push(...errorLines(h, out).map((l) => `  ${l}`));
    }
  }
  if (r.items && r.items.length > 0) {
    lines.push(`  ${c.bold('Items')}`);
    for (const i of r.items) {
      const why = i.error ? ` — ${i.stoppedAt ? `${i.stoppedAt}: ` : ''}${i.error.message}` : i.stoppedAt ? ` — during ${i.stoppedAt}` : '';
      lines.push(`    ${i.item.padEnd(10)} ${itemStatus(out, i.status)}${why}`);
    }
  }
  if (r.undo.length > 0) {
    const after = r.stoppedAt ? `after the ${r.interrupted ? 'interruption during' : 'failure in'} "${r.stoppedAt}"` : 'of the items that failed';
    lines.push(`  ${c.bold('Undo')} (${after})`);
    for (const u of r.undo) {
      lines.push(`    ${u.host.padEnd(10)} ${u.ok ? c.green('undone') : c.red('UNDO FAILED')} ${u.item !== undefined ? `[${u.item}] ` : ''}${u.phase}`);
      if (!u.ok) {
        lines.push(`      ${c.red('left in place:')} ${(u.left ?? u.actions).join('; ') || '(unknown)'}`);
        if (u.left && u.actions.length > 0) lines.push(`      undo that failed: ${u.actions.join('; ')}`);
        if (u.error) lines.push(`      ${u.error.message}`, ...u.error.details.map((d) => `        ${d}`));
      }
    }
  }
  if (r.stoppedAt && r.undo.length === 0 && r.mode === 'apply') lines.push(c.dim(`  ${r.interrupted ? 'Interrupted during' : 'Stopped at'} "${r.stoppedAt}"; later phases did not run.`));
  return [...lines, ...findingLines(r.findings, out)];
}

/** Findings, errors first: what was found where, why it matters, the fix. */
export function findingLines(findings: readonly Finding[], out: Output): string[] {
  if (findings.length === 0) return [];
  const c = out.c;
  const rank = { error: 0, warning: 1, info: 2 } as const;
  const sorted = [...findings].sort((a, b) => rank[a.severity] - rank[b.severity]);
  const label = (f: Finding) => (f.severity === 'error' ? c.red('ERROR') : f.severity === 'warning' ? c.yellow('WARNING') : c.dim('info'));
  return [
    '',
    c.bold('Findings'),
    ...sorted.flatMap((f) => [`  ${label(f)} ${f.host}: ${f.found}`, `    ${c.dim('why:')} ${f.why}`, ...f.fix.map((x, i) => `    ${c.dim(i === 0 ? 'fix:' : '    ')} ${x}`)]),
  ];
}

/** A phase's name in a report: an item's phases carry the item's name. */
function phaseName(p: PhaseOutcome): string {
  return p.item !== undefined ? `[${p.item}] ${p.title}` : p.title;
}

function itemStatus(out: Output, s: ItemStatus): string {
  const c = out.c;
  if (s === 'failed' || s === 'interrupted') return c.red(s.toUpperCase());
  if (s === 'done') return c.green(s);
  if (s === 'would-change') return c.yellow('would change');
  return c.dim(s);
}

function statusColor(out: Output, s: HostOutcome['status']): string {
  const c = out.c;
  const t = MARK[s];
  if (s === 'failed') return c.red(t);
  if (s === 'done') return c.green(t);
  if (s === 'would-change') return c.yellow(t);
  return c.dim(t);
}

function errorLines(h: HostOutcome, out: Output): string[] {
  const e = h.error;
  if (!e) return [];
  const lines = [`    ${out.c.red('error:')} ${e.message}`];
  if (e.command) lines.push(`      command: ${e.command}`);
  if (e.command && e.remoteExitCode !== undefined) lines.push(`      exit code: ${e.remoteExitCode}`);
  for (const d of e.details) lines.push(`      ${d}`);
  return lines;
}
