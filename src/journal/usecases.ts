import { readFileSync } from 'node:fs';
import type { Context } from '../context.js';
import { ExitCode, OperationError, UsageError } from '../errors.js';
import type { Invocation } from '../usecase.js';
import { filterJournal, journalRow, parseJournal, parseSince, type JournalFilter } from './read.js';

/**
 * `enssib journal`: who changed what, when, with what outcome — oldest first,
 * as `git log --reverse` reads history. Text: one table row per run; `-o json`:
 * the records themselves, one JSON line each (for jq). No journal (the
 * inventory names none, or nothing was recorded yet) is said on stderr and is
 * not an error: exit 0 with no rows.
 */
export async function journalCommand(ctx: Context, inv: Invocation): Promise<number> {
  const filter: JournalFilter = {};
  if (inv.opts.since !== undefined) filter.since = parseSince(String(inv.opts.since));
  const inventory = ctx.inventory();
  if (inv.opts.host !== undefined) {
    const host = String(inv.opts.host);
    const known = inventory.hosts.map((h) => h.name);
    if (!known.includes(host)) throw new UsageError(`--host ${JSON.stringify(host)}: no host "${host}" in the inventory`, [`Known hosts: ${known.join(', ')}`]);
    filter.host = host;
  }
  if (inv.opts.command !== undefined) filter.command = String(inv.opts.command).trim().split(/\s+/).join(' ');
  const file = inventory.journalFile();
  if (!file) {
    ctx.out.note(`No journal: ${inventory.file} has no "journal" field, so runs are not recorded. Add e.g. "journal: /var/log/enssib/journal.jsonl".`);
    return ExitCode.ok;
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      ctx.out.note(`No journal yet: ${file} does not exist (the first real run that changes something writes it).`);
      return ExitCode.ok;
    }
    throw new OperationError(`cannot read the journal ${file}: ${(e as Error).message}`, code === 'EACCES' ? ['The journal is readable by root and its group (mode 640): run as root or with sudo.'] : []);
  }
  const read = parseJournal(text, file);
  for (const w of read.warnings) ctx.out.warn(w);
  const records = filterJournal(read.records, filter);
  if (ctx.out.format === 'json') {
    for (const r of records) ctx.out.jsonLine(r);
    return ExitCode.ok;
  }
  if (records.length === 0) {
    ctx.out.note(read.records.length === 0 ? `The journal ${file} has no runs yet.` : `No run in the journal matches (${read.records.length} recorded in ${file}).`);
    return ExitCode.ok;
  }
  const rows = records.map(journalRow);
  for (const l of ctx.out.table(['TIME', 'USER', 'COMMAND', 'RESULT', 'HOSTS', 'CHANGED'], rows.map((r) => [r.time, r.user, r.command, r.result, r.hosts, r.changed]))) ctx.out.line(l);
  return ExitCode.ok;
}
