import { appendFileSync, mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import type { Context } from '../context.js';
import { ExitCode, interruptedExitCode } from '../errors.js';
import type { RunReport } from './types.js';

/** One line of the journal: who ran what, when, with which plan and outcome. */
export interface JournalRecord {
  time: string;
  user: string;
  argv: string[];
  plan: string;
  durationMs: number;
  exitCode: number;
  phases: { title: string; item?: string; hosts: { host: string; status: string; actions: string[]; error?: string }[] }[];
  undo: { phase: string; item?: string; host: string; ok: boolean }[];
  /** Per-item work: each item's status (and why it failed). */
  items?: { item: string; status: string; error?: string }[];
  /** The outcome in one line for a person (e.g. a night's backup: how many volumes, which failed). */
  summary?: string;
}

/** What the journal says about a run; time, user and argv are added when it is written. */
export type JournalEntry = Omit<JournalRecord, 'time' | 'user' | 'argv'>;

/** The admin behind the command (the one who ran sudo, if sudo was used). */
export function currentUser(): string {
  try {
    return process.env.SUDO_USER ?? userInfo().username;
  } catch {
    return 'unknown';
  }
}

export function journalEntry(report: RunReport): JournalEntry {
  return {
    plan: report.plan,
    durationMs: report.durationMs,
    exitCode: report.exitCode,
    phases: report.phases.map((p) => ({
      title: p.title,
      ...(p.item !== undefined ? { item: p.item } : {}),
      hosts: p.hosts.map((h) => ({ host: h.host, status: h.status, actions: h.actions, ...(h.error ? { error: h.error.message } : {}) })),
    })),
    undo: report.undo.map((u) => ({ phase: u.phase, ...(u.item !== undefined ? { item: u.item } : {}), host: u.host, ok: u.ok })),
    ...(report.items ? { items: report.items.map((i) => ({ item: i.item, status: i.status, ...(i.error ? { error: i.error.message } : {}) })) } : {}),
  };
}

/** Appends one JSON line; O_APPEND keeps concurrent writers' lines whole. */
export function appendJournal(file: string, record: JournalRecord): void {
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${JSON.stringify(record)}\n`, { mode: 0o640 });
}

/**
 * Appends a record to the inventory's journal; a journal that cannot be written
 * is a warning, never a failure. An interrupted run is recorded with the exit
 * code of the signal that interrupted it (143 for SIGTERM, 129 for SIGHUP), as
 * the process exits.
 */
export function writeJournal(ctx: Pick<Context, 'inventory' | 'argv' | 'out'> & Partial<Pick<Context, 'signal'>>, entry: JournalEntry): void {
  let file: string | undefined;
  try {
    file = ctx.inventory().journalFile();
  } catch {
    return;
  }
  if (!file) return;
  try {
    const exitCode = entry.exitCode === ExitCode.interrupted ? interruptedExitCode(ctx.signal) : entry.exitCode;
    appendJournal(file, { time: new Date().toISOString(), user: currentUser(), argv: ctx.argv, ...entry, exitCode });
  } catch (e) {
    ctx.out.warn(`could not write the journal ${file}: ${(e as Error).message}`);
  }
}
