import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Context } from '../../../src/context.js';
import { journalEntry, writeJournal } from '../../../src/engine/journal.js';
import { runPlan } from '../../../src/engine/runner.js';
import type { Plan } from '../../../src/engine/types.js';
import { ExitCode } from '../../../src/errors.js';
import { fakePool } from '../../support/fake-hosts.js';

/** The journal record of an interrupted run says the exit code the process exits with: 130 SIGINT, 143 SIGTERM, 129 SIGHUP. */
function journalCtx(signal: AbortSignal): { ctx: Pick<Context, 'inventory' | 'argv' | 'out' | 'signal'>; records: () => { exitCode: number }[] } {
  const file = join(mkdtempSync(join(tmpdir(), 'enssib-journal-')), 'journal.jsonl');
  const ctx = {
    inventory: () => ({ journalFile: () => file }),
    argv: ['enssib', 'volume', 'create', 'mail', '1G'],
    out: { warn: (m: string) => expect.fail(m) },
    signal,
  } as unknown as Pick<Context, 'inventory' | 'argv' | 'out' | 'signal'>;
  return { ctx, records: () => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { exitCode: number }) };
}

const plan = (): Plan => ({
  title: 'demo',
  mutating: true,
  phases: [
    { title: 'lv', hosts: ['data1'], plan: () => [{ kind: 'command', argv: ['lvcreate'] }], undo: () => [{ kind: 'command', argv: ['lvremove'] }] },
    { title: 'export', hosts: ['data1'], plan: () => [{ kind: 'command', argv: ['export'] }] },
  ],
  always: [{ title: 'unlock', hosts: ['data1'], plan: () => [{ kind: 'command', argv: ['unlock'] }] }],
});

describe('the exit code of an interrupted run, in the report and the journal', () => {
  for (const [sig, code] of [
    ['SIGINT', ExitCode.interrupted],
    ['SIGTERM', ExitCode.terminated],
    ['SIGHUP', ExitCode.hangup],
  ] as const) {
    it(`${sig}: ${code}`, async () => {
      const ac = new AbortController();
      const pool = fakePool((_h, argv) => {
        if (argv[0] === 'lvcreate') ac.abort(sig);
        return undefined;
      });
      const r = await runPlan(plan(), { mode: 'apply', concurrency: 2, hosts: pool, signal: ac.signal });
      expect(r.interrupted).toBe(true);
      expect(r.exitCode).toBe(code);
      const j = journalCtx(ac.signal);
      writeJournal(j.ctx, journalEntry(r));
      // A command whose report is built by hand (deploy, image push) says 130: the journal still records the signal's code.
      writeJournal(j.ctx, { ...journalEntry(r), exitCode: ExitCode.interrupted });
      expect(j.records().map((x) => x.exitCode)).toEqual([code, code]);
    });
  }

  it('an interruption without a signal name (a test, the menu) is 130; other exit codes are kept', async () => {
    const ac = new AbortController();
    ac.abort();
    const j = journalCtx(ac.signal);
    writeJournal(j.ctx, { plan: 'x', durationMs: 1, exitCode: ExitCode.interrupted, phases: [], undo: [] });
    writeJournal(j.ctx, { plan: 'x', durationMs: 1, exitCode: ExitCode.partial, phases: [], undo: [] });
    expect(j.records().map((x) => x.exitCode)).toEqual([130, 3]);
  });
});
