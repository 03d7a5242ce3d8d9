import { ExitCode, UsageError } from '../errors.js';
import { LOCAL } from '../engine/types.js';
import type { JournalRecord } from '../engine/journal.js';
import { quote } from '../remote/quote.js';
import { PHASE_LOCK, PHASE_RELEASE } from '../storage/volume.js';

/**
 * Reading the journal (`engine/journal.ts` writes it: one JSON record per line,
 * one line per real run that changed something). A line that is not a record
 * (cut short by a full disk, edited by hand) is reported with its file:line and
 * skipped: the rest of the history is still shown.
 */

export interface JournalRead {
  records: JournalRecord[];
  /** "journal.jsonl:12: not JSON (Unexpected end of JSON input)" */
  warnings: string[];
}

const DURATION = /^(\d{1,6})([smhdw])$/;
const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
const DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2})?)?$/;

/** `--since`: a duration back from now (30m, 12h, 2d, 1w) or a date (2026-12-01, 2026-12-01T14:00, with Z or an offset; local time otherwise). */
export function parseSince(value: string, now: Date = new Date()): Date {
  const v = value.trim();
  const d = DURATION.exec(v);
  if (d) return new Date(now.getTime() - Number(d[1]) * (UNIT_S[d[2] as string] as number) * 1000);
  if (DATE.test(v)) {
    // a date alone is midnight local time, as `date -d 2026-12-01` reads it
    const t = new Date(v.length === 10 ? `${v}T00:00` : v.replace(' ', 'T'));
    const [y, mo, day] = v.slice(0, 10).split('-').map(Number);
    if (!Number.isNaN(t.getTime()) && mo !== undefined && mo >= 1 && mo <= 12 && day !== undefined && day >= 1 && day <= new Date(y ?? 0, mo, 0).getDate()) return t;
  }
  throw new UsageError(`--since ${JSON.stringify(value.slice(0, 40))} is neither a duration nor a date`, [
    'A duration back from now: 30m, 12h, 2d, 1w (s, m, h, d, w).',
    'Or a date: 2026-12-01 (midnight local time), 2026-12-01T14:00, 2026-12-01T14:00Z.',
  ]);
}

function isRecord(v: unknown): v is JournalRecord {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.time === 'string' &&
    !Number.isNaN(Date.parse(r.time)) &&
    typeof r.user === 'string' &&
    Array.isArray(r.argv) &&
    r.argv.every((a) => typeof a === 'string') &&
    typeof r.plan === 'string' &&
    typeof r.exitCode === 'number' &&
    Array.isArray(r.phases) &&
    r.phases.every((p: unknown) => typeof p === 'object' && p !== null && typeof (p as { title?: unknown }).title === 'string' && Array.isArray((p as { hosts?: unknown }).hosts)) &&
    Array.isArray(r.undo)
  );
}

/** The records of a journal's text, in file order; `name` is how warnings name the file. */
export function parseJournal(text: string, name: string): JournalRead {
  const records: JournalRecord[] = [];
  const warnings: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      warnings.push(`${name}:${i + 1}: not JSON (${(e as Error).message}); line skipped`);
      return;
    }
    if (isRecord(v)) records.push(v);
    else warnings.push(`${name}:${i + 1}: not a journal record (time, user, argv, plan, exitCode, phases, undo); line skipped`);
  });
  return { records, warnings };
}

export interface JournalFilter {
  since?: Date;
  /** An inventory host: runs that did something there (or failed there). */
  host?: string;
  /** Command words: "volume", "volume create". */
  command?: string;
}

export function filterJournal(records: readonly JournalRecord[], f: JournalFilter): JournalRecord[] {
  return records.filter(
    (r) =>
      (!f.since || Date.parse(r.time) >= f.since.getTime()) &&
      (!f.host || r.phases.some((p) => p.hosts.some((h) => h.host === f.host))) &&
      (!f.command || r.plan === f.command || r.plan.startsWith(`${f.command} `)),
  );
}

const RESULT: Record<number, string> = {
  [ExitCode.ok]: 'ok',
  [ExitCode.failed]: 'failed',
  [ExitCode.usage]: 'refused',
  [ExitCode.partial]: 'partial',
  [ExitCode.interrupted]: 'interrupted',
  [ExitCode.terminated]: 'SIGTERM',
  [ExitCode.hangup]: 'SIGHUP',
};

/** One row a sysadmin reads: when, who, what, how it ended, where, what changed. */
export interface JournalRow {
  time: string;
  user: string;
  command: string;
  result: string;
  hosts: string;
  changed: string;
}

const show = (hosts: string[]) => hosts.filter((h) => h !== LOCAL).join(',');
/** Taking and releasing the storage lock change nothing a reader looks for. */
const BOOKKEEPING = new Set([PHASE_LOCK, PHASE_RELEASE]);

export function journalRow(r: JournalRecord): JournalRow {
  const touched = new Set<string>();
  const changed: string[] = [];
  let failedAt = '';
  for (const p of r.phases) {
    // per-item work (one volume of several) names its item
    const title = p.item !== undefined ? `${p.item}: ${p.title}` : p.title;
    const done = p.hosts.filter((h) => h.status === 'done' && h.actions.length > 0).map((h) => h.host);
    const failed = p.hosts.filter((h) => h.status === 'failed').map((h) => h.host);
    for (const h of [...done, ...failed]) touched.add(h);
    if (done.length > 0 && !BOOKKEEPING.has(p.title)) changed.push(show(done) ? `${title} (${show(done)})` : title);
    if (failed.length > 0 && !failedAt) failedAt = show(failed) ? `FAILED: ${title} (${show(failed)})` : `FAILED: ${title}`;
  }
  const undoFailed = r.undo.some((u) => !u.ok);
  const result = [`${RESULT[r.exitCode] ?? 'exit'} ${r.exitCode}`, ...(r.undo.length > 0 ? [undoFailed ? 'UNDO FAILED' : 'undone'] : [])].join(', ');
  const what = [...(changed.length > 0 ? changed : ['nothing']), ...(failedAt ? [failedAt] : [])].join('; ');
  return {
    time: r.time.replace(/\.\d+Z$/, 'Z'),
    user: r.user,
    command: quote(r.argv[0] === 'enssib' ? r.argv.slice(1) : r.argv),
    result,
    hosts: show([...touched]) || '-',
    // a run that says its outcome in one line (a night's backup of every volume) is read by that line
    changed: r.summary ?? what,
  };
}
