import { appendFileSync, mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import type { RunReport } from './types.js';

/** One line of the journal: who ran what, when, with which plan and outcome. */
export interface JournalRecord {
  time: string;
  user: string;
  argv: string[];
  plan: string;
  durationMs: number;
  exitCode: number;
  phases: { title: string; hosts: { host: string; status: string; actions: string[]; error?: string }[] }[];
  undo: { phase: string; host: string; ok: boolean }[];
}

export function journalRecord(report: RunReport, argv: string[]): JournalRecord {
  let user = 'unknown';
  try {
    user = process.env.SUDO_USER ?? userInfo().username;
  } catch {
    /* no passwd entry: keep "unknown" */
  }
  return {
    time: new Date().toISOString(),
    user,
    argv,
    plan: report.plan,
    durationMs: report.durationMs,
    exitCode: report.exitCode,
    phases: report.phases.map((p) => ({
      title: p.title,
      hosts: p.hosts.map((h) => ({ host: h.host, status: h.status, actions: h.actions, ...(h.error ? { error: h.error.message } : {}) })),
    })),
    undo: report.undo.map((u) => ({ phase: u.phase, host: u.host, ok: u.ok })),
  };
}

/** Appends one JSON line; O_APPEND keeps concurrent writers' lines whole. */
export function appendJournal(file: string, record: JournalRecord): void {
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${JSON.stringify(record)}\n`, { mode: 0o640 });
}
