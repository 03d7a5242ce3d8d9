import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendJournal, type JournalRecord } from '../../../src/engine/journal.js';
import { filterJournal, journalRow, parseJournal, parseSince } from '../../../src/journal/read.js';
import { enssib } from '../../support/cli.js';

/**
 * `enssib journal`: the reader of what engine/journal.ts writes. Unit tests of
 * parsing and filtering, then the built CLI over a copy of the bundled
 * inventory whose journal is a file here (malformed input, a damaged line, no
 * journal at all).
 */
const rec = (over: Partial<JournalRecord>): JournalRecord => ({
  time: '2026-11-28T10:00:00.123Z',
  user: 'alice',
  argv: ['enssib', 'volume', 'create', 'mail', '200G'],
  plan: 'volume create mail 200G',
  durationMs: 8123,
  exitCode: 0,
  phases: [
    { title: 'take the storage lock', hosts: [{ host: 'data1', status: 'done', actions: ['sh -c …'] }] },
    { title: 'create the logical volume on the metadata host', hosts: [{ host: 'data1', status: 'done', actions: ['lvcreate …'] }] },
    { title: 'export on both storage servers with one device identity', hosts: [{ host: 'data1', status: 'done', actions: ['edit'] }, { host: 'data2', status: 'done', actions: ['edit'] }] },
    { title: 'discovery on every worker (both portals)', hosts: [{ host: 'node01', status: 'unchanged', actions: [] }] },
    { title: 'release the storage lock', hosts: [{ host: 'data1', status: 'done', actions: ['sh -c …'] }] },
  ],
  undo: [],
  ...over,
});

const CREATE = rec({});
const RESIZE = rec({
  time: '2026-12-02T09:30:00.000Z',
  user: 'bob',
  argv: ['enssib', 'volume', 'resize', 'mail', '300G', '--grow-fs'],
  plan: 'volume resize mail 300G',
  exitCode: 1,
  phases: [
    { title: 'grow the logical volume', hosts: [{ host: 'data1', status: 'done', actions: ['lvextend'] }] },
    { title: 'grow the filesystem', hosts: [{ host: 'node02', status: 'failed', actions: ['resize2fs'], error: 'resize2fs exited 1' }] },
  ],
  undo: [{ phase: 'grow the logical volume', host: 'data1', ok: true }],
});
const DEPLOY = rec({
  time: '2026-12-03T08:00:00.000Z',
  user: 'carol',
  argv: ['enssib', 'service', 'deploy', 'www', '--timeout', '300 s'],
  plan: 'service deploy www',
  phases: [{ title: 'apply', hosts: [{ host: 'www', status: 'done', actions: ['apply apps/v1 Deployment default/www: configured'] }] }],
});

describe('parseSince', () => {
  const now = new Date('2026-12-03T12:00:00Z');
  it('reads durations back from now and dates', () => {
    expect(parseSince('2d', now).toISOString()).toBe('2026-12-01T12:00:00.000Z');
    expect(parseSince('30m', now).toISOString()).toBe('2026-12-03T11:30:00.000Z');
    expect(parseSince('1w', now).toISOString()).toBe('2026-11-26T12:00:00.000Z');
    expect(parseSince('2026-12-01T14:00Z').toISOString()).toBe('2026-12-01T14:00:00.000Z');
    expect(parseSince('2026-12-01T14:00:05+01:00').toISOString()).toBe('2026-12-01T13:00:05.000Z');
    expect(parseSince('2026-12-01').getTime()).toBe(new Date(2026, 11, 1).getTime()); // midnight local time
  });
  it.each(['', '2', 'd', '2x', '-2d', '2 days', '1.5h', '9999999d', '2026-13-01', '2026-02-30', '2026-12-01T25:00', '12/01/2026', 'yesterday', '2026-12-01; rm -rf /'])(
    'refuses %j with the forms it takes (usage error)',
    (v) => {
      expect(() => parseSince(v, now)).toThrow(/--since .* is neither a duration nor a date/);
    },
  );
});

describe('parseJournal, filterJournal, journalRow', () => {
  const text = [JSON.stringify(CREATE), '{"time":"2026-12-02T09:31:00.000Z","user":"bob","argv":["ens', JSON.stringify(RESIZE), '', '[1,2]', '{"time":"yesterday","user":"x","argv":[],"plan":"p","exitCode":0,"phases":[],"undo":[]}', JSON.stringify(DEPLOY), ''].join('\n');

  it('names each damaged line by file:line and keeps every other record', () => {
    const r = parseJournal(text, '/var/log/enssib/journal.jsonl');
    expect(r.records.map((x) => x.user)).toEqual(['alice', 'bob', 'carol']);
    expect(r.warnings).toEqual([
      expect.stringMatching(/^\/var\/log\/enssib\/journal\.jsonl:2: not JSON \(.*\); line skipped$/),
      '/var/log/enssib/journal.jsonl:5: not a journal record (time, user, argv, plan, exitCode, phases, undo); line skipped',
      '/var/log/enssib/journal.jsonl:6: not a journal record (time, user, argv, plan, exitCode, phases, undo); line skipped',
    ]);
  });

  it('filters by time, host and command words', () => {
    const all = [CREATE, RESIZE, DEPLOY];
    expect(filterJournal(all, { since: new Date('2026-12-01T00:00:00Z') })).toEqual([RESIZE, DEPLOY]);
    expect(filterJournal(all, { host: 'data2' })).toEqual([CREATE]);
    expect(filterJournal(all, { host: 'node02' })).toEqual([RESIZE]); // it failed there
    expect(filterJournal(all, { command: 'volume' })).toEqual([CREATE, RESIZE]);
    expect(filterJournal(all, { command: 'volume create' })).toEqual([CREATE]);
    expect(filterJournal(all, { command: 'volume cr' })).toEqual([]); // words, not a prefix of a word
    expect(filterJournal(all, { command: 'service', since: new Date('2026-12-04T00:00:00Z') })).toEqual([]);
  });

  it('says when, who, what, how it ended, where and what changed (the lock is not a change)', () => {
    expect(journalRow(CREATE)).toEqual({
      time: '2026-11-28T10:00:00Z',
      user: 'alice',
      command: 'volume create mail 200G',
      result: 'ok 0',
      hosts: 'data1,data2',
      changed: 'create the logical volume on the metadata host (data1); export on both storage servers with one device identity (data1,data2)',
    });
    expect(journalRow(RESIZE)).toMatchObject({ result: 'failed 1, undone', hosts: 'data1,node02', changed: 'grow the logical volume (data1); FAILED: grow the filesystem (node02)' });
    expect(journalRow({ ...RESIZE, undo: [{ phase: 'grow the logical volume', host: 'data1', ok: false }] }).result).toBe('failed 1, UNDO FAILED');
    expect(journalRow(DEPLOY)).toMatchObject({ command: "service deploy www --timeout '300 s'", hosts: 'www', changed: 'apply (www)' });
    expect(journalRow(rec({ phases: [], exitCode: 130 }))).toMatchObject({ result: 'interrupted 130', hosts: '-', changed: 'nothing' });
    expect(journalRow(rec({ phases: [], exitCode: 143 })).result).toBe('SIGTERM 143');
    // per-item work names the item of each phase
    const items = rec({
      exitCode: 3,
      phases: [
        { title: 'snapshot', item: 'mail', hosts: [{ host: 'data1', status: 'done', actions: ['lvcreate -s'] }] },
        { title: 'snapshot', item: 'ldap', hosts: [{ host: 'data1', status: 'failed', actions: [], error: 'no space' }] },
      ],
      items: [{ item: 'mail', status: 'done' }, { item: 'ldap', status: 'failed', error: 'no space' }],
    });
    expect(journalRow(items)).toMatchObject({ result: 'partial 3', hosts: 'data1', changed: 'mail: snapshot (data1); FAILED: ldap: snapshot (data1)' });
  });
});

describe('enssib journal (built CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-journal-'));
  const bundled = readFileSync(join(import.meta.dirname, '../../../inventory.yaml'), 'utf8');
  const inventory = (name: string, journal: string | null) => {
    const f = join(dir, name);
    writeFileSync(f, journal === null ? bundled.replace(/^journal: .*\n/m, '') : bundled.replace(/^journal: .*$/m, `journal: ${journal}`));
    return f;
  };
  const inv = inventory('inventory.yaml', 'journal.jsonl');
  const file = join(dir, 'journal.jsonl');
  // what the writer writes, then a line cut short (a full disk), then more runs
  for (const r of [CREATE, RESIZE]) appendJournal(file, r);
  writeFileSync(file, `${readFileSync(file, 'utf8')}{"time":"2026-12-02T09:31:00.000Z","user":"bob","argv":["ens\n`);
  appendJournal(file, DEPLOY);

  it('prints one table row per run, oldest first, and names a damaged line by file:line', async () => {
    const r = await enssib(['-i', inv, 'journal']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TIME +USER +COMMAND +RESULT +HOSTS +CHANGED$/);
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/).slice(0, 5))).toEqual([
      ['2026-11-28T10:00:00Z', 'alice', 'volume create mail 200G', 'ok 0', 'data1,data2'],
      ['2026-12-02T09:30:00Z', 'bob', 'volume resize mail 300G --grow-fs', 'failed 1, undone', 'data1,node02'],
      ['2026-12-03T08:00:00Z', 'carol', "service deploy www --timeout '300 s'", 'ok 0', 'www'],
    ]);
    expect(r.stderr.split('\n').filter(Boolean)).toEqual([expect.stringMatching(new RegExp(`^warning: ${file}:3: not JSON \\(.*\\); line skipped$`))]);
  });

  it('-o json prints the records themselves, one JSON line each; filters combine', async () => {
    const r = await enssib(['-i', inv, 'journal', '-o', 'json', '--command', 'volume', '--since', '2026-12-01T00:00Z']);
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown)).toEqual([RESIZE]);
    const host = await enssib(['-i', inv, 'journal', '--host', 'data2', '-o', 'json']);
    expect(host.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as JournalRecord).user)).toEqual(['alice']);
    const none = await enssib(['-i', inv, 'journal', '--since', '1m']);
    expect(none).toMatchObject({ code: 0, stdout: '' });
    expect(none.stderr).toContain('No run in the journal matches (3 recorded in');
  });

  it.each([
    [['--since', '2x'], /--since "2x" is neither a duration nor a date/],
    [['--since', '2026-02-30'], /--since "2026-02-30" is neither a duration nor a date/],
    [['--since'], /argument missing/],
    [['--host', 'data9'], /--host "data9": no host "data9" in the inventory\n {2}Known hosts: data1, data2, node01, node02, node03/],
    [['--host', '../etc'], /host/],
    [['--command', 'vol'], /--command "vol" is not a command of enssib/],
    [['--command', 'volume create; rm'], /is not a command of enssib/],
  ])('refuses %j before reading anything (exit 2, no stack)', async (args, message) => {
    const r = await enssib(['-i', inv, 'journal', ...args]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('no journal is said on stderr with exit 0: not named, not written yet; an unreadable one is an error', async () => {
    const unnamed = await enssib(['-i', inventory('no-journal.yaml', null), 'journal']);
    expect(unnamed).toMatchObject({ code: 0, stdout: '' });
    expect(unnamed.stderr).toMatch(/^No journal: .*no-journal\.yaml has no "journal" field, so runs are not recorded\./);
    const missing = await enssib(['-i', inventory('missing.yaml', 'nowhere/journal.jsonl'), 'journal', '-o', 'json']);
    expect(missing).toMatchObject({ code: 0, stdout: '' });
    expect(missing.stderr).toContain(`No journal yet: ${join(dir, 'nowhere/journal.jsonl')} does not exist`);
    const locked = join(dir, 'locked.jsonl');
    writeFileSync(locked, '');
    chmodSync(locked, 0o000);
    const r = await enssib(['-i', inventory('locked.yaml', 'locked.jsonl'), 'journal']);
    if (process.getuid?.() === 0) expect(r.code).toBe(0); // root reads it anyway
    else expect(r).toMatchObject({ code: 1, stderr: expect.stringContaining('cannot read the journal') });
    writeFileSync(join(dir, 'empty.jsonl'), '');
    const empty = await enssib(['-i', inventory('empty.yaml', 'empty.jsonl'), 'journal']);
    expect(empty).toMatchObject({ code: 0, stdout: '', stderr: `The journal ${join(dir, 'empty.jsonl')} has no runs yet.` });
  });
});
