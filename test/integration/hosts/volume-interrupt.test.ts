import { execa, type ResultPromise } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BIN, assertBuilt } from '../../support/cli.js';
import { volumeLab } from './volume-lab.js';

/**
 * A real `enssib volume create` interrupted over real OpenSSH (hosts lab,
 * stand-in storage binaries): Ctrl-C (SIGINT to the whole process group, as
 * a terminal sends it), SIGTERM and SIGHUP at several points, a second
 * Ctrl-C, and a remote command that runs past its time limit. Each time: the
 * right exit code, the lock released (or someone else's lock kept), nothing
 * left running on the hosts, what was created undone from facts read again,
 * and a journal record.
 */
const v = volumeLab();
const LOCK = '/run/enssib/storage.lock';
const PHASE_LV = 'create the logical volume on the metadata host';

beforeAll(() => {
  assertBuilt();
  v.install();
});
beforeEach(() => v.reset());
afterEach(() => v.configure([]));
afterAll(() => v.uninstall());

/** Starts enssib as a terminal's foreground job: in its own process group, so a signal can go to the whole group. */
function start(args: string[], inventory = v.lab.inventoryFile): ResultPromise<{ detached: true; reject: false; env: Record<string, string>; timeout: number }> {
  return execa('node', [BIN, '-i', inventory, ...args], { detached: true, reject: false, env: { NO_COLOR: '1', CI: '1' }, timeout: 120_000 });
}

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The processes on a host whose command line mentions one of the words (the stand-ins, the lock loop, the supervisor). */
function running(host: string, words: string[]): string[] {
  return v
    .exec(host, 'ps -eo args')
    .split('\n')
    .filter((l) => words.some((w) => l.includes(w)));
}

const lockState = () => v.exec('data1', `cat ${LOCK} 2>/dev/null || echo free`).trim();
const lvs = () => v.exec('data1', 'ls /var/lib/enssib-stand-in/lvm/vg_cluster/ 2>/dev/null || true').trim();

function lastJournal(): { argv: string[]; exitCode: number; phases: { title: string; hosts: { host: string; status: string }[] }[]; undo: { phase: string; ok: boolean }[] } {
  const lines = readFileSync(join(v.lab.state, 'journal.jsonl'), 'utf8').trim().split('\n');
  return JSON.parse(lines.at(-1) as string);
}

function expectCleanHosts(): void {
  for (const h of v.hosts) expect(running(h, ['/lvcreate', '/iscsiadm', 'enssib-lock', 'enssib-run', 'sleep'])).toEqual([]);
}

describe('interrupting volume create', () => {
  it('Ctrl-C while waiting for the lock: exit 130 at once, the wait loop stopped on the host, the other lock kept', async () => {
    const theirs = 'token=0123abcd user=alice host=laptop pid=4242 since=2026-11-28T10:00:00.000Z command=enssib volume delete old';
    v.writeFile('data1', LOCK, `${theirs}\n`);
    const child = start(['volume', 'create', 'mail', '1G', '--lock-wait', '60']);
    await until('the lock wait loop on data1', () => running('data1', ['enssib-lock']).length > 0);
    const t0 = Date.now();
    process.kill(-(child.pid as number), 'SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(130);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(String(r.stderr)).toContain('error: volume create mail interrupted during "take the storage lock"');
    expect(String(r.stderr)).toContain('Nothing had been changed.');
    expect(String(r.stderr)).not.toMatch(/cannot reach|connection .* closed/);
    expect(running('data1', ['enssib-lock', 'enssib-run'])).toEqual([]);
    // Once alice's lock goes, nothing of ours takes it later.
    v.exec('data1', `rm -f ${LOCK}`);
    await new Promise((r) => setTimeout(r, 2500));
    expect(lockState()).toBe('free');
    expect(v.lines('data1', 'lvcreate')).toEqual([]);
    expect(lastJournal()).toMatchObject({ exitCode: 130, argv: ['enssib', '-i', v.lab.inventoryFile, 'volume', 'create', 'mail', '1G', '--lock-wait', '60'] });
  });

  it('Ctrl-C during lvcreate: lvcreate finishes, then the LV is removed, the lock released, exit 130, journaled', async () => {
    v.configure(['DELAY_lvcreate=3']);
    const child = start(['volume', 'create', 'mail', '1G']);
    await until('lvcreate on data1', () => v.lines('data1', 'lvcreate').length > 0);
    process.kill(-(child.pid as number), 'SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(130);
    expect(String(r.stderr)).toContain(`error: volume create mail interrupted during "${PHASE_LV}"`);
    expect(String(r.stderr)).toContain('What this run had done was undone');
    expect(String(r.stderr)).not.toMatch(/cannot reach|Nothing had been changed/);
    expect(String(r.stdout)).toMatch(new RegExp(`Undo \\(after the interruption during "${PHASE_LV}"\\)\\n {4}data1 +undone ${PHASE_LV}`));
    // lvcreate was not killed: it finished, and its LV was removed after.
    const d1 = v.lines('data1').filter((l) => /^(lvcreate|mkfs|lvremove)/.test(l));
    expect(d1.map((l) => l.split(' ')[0])).toEqual(['lvcreate', 'lvremove']);
    expect(lvs()).toBe('');
    expect(lockState()).toBe('free');
    for (const w of v.workers) expect(v.calls(w)).toEqual([]);
    expectCleanHosts();
    const j = lastJournal();
    expect(j.exitCode).toBe(130);
    expect(j.undo).toEqual([{ phase: PHASE_LV, host: 'data1', ok: true }]);
    expect(j.phases.at(-1)).toMatchObject({ title: 'release the storage lock', hosts: [{ host: 'data1', status: 'done' }] });
  });

  it('SIGTERM during the worker phase: everything undone, exit 143', async () => {
    v.configure(['DELAY_iscsiadm=2']);
    const child = start(['volume', 'create', 'mail', '1G']);
    await until('discovery on a worker', () => v.lines('node01', 'iscsiadm').length > 0);
    process.kill(child.pid as number, 'SIGTERM');
    const r = await child;
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(143);
    expect(String(r.stderr)).toContain('SIGTERM received');
    expect(String(r.stderr)).toContain('error: volume create mail interrupted during "discovery on every worker (both portals)"');
    expect(lvs()).toBe('');
    expect(lockState()).toBe('free');
    expect(v.exec('data1', 'cat /etc/scst.conf 2>/dev/null || true')).not.toContain('mail');
    expectCleanHosts();
    const j = lastJournal();
    expect(j.exitCode).toBe(143);
    expect(j.undo.map((u) => u.phase)).toEqual(expect.arrayContaining([PHASE_LV, 'export on both storage servers with one device identity']));
    expect(j.undo.every((u) => u.ok)).toBe(true);
  });

  it('SIGHUP during lvcreate: exit 129, the LV removed, the lock released', async () => {
    v.configure(['DELAY_lvcreate=2']);
    const child = start(['volume', 'create', 'mail', '1G']);
    await until('lvcreate on data1', () => v.lines('data1', 'lvcreate').length > 0);
    process.kill(child.pid as number, 'SIGHUP');
    const r = await child;
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(129);
    expect(lvs()).toBe('');
    expect(lockState()).toBe('free');
    expectCleanHosts();
    expect(lastJournal().exitCode).toBe(129);
  });

  it('a second Ctrl-C cancels lvcreate on the host; the undo reads lvs again, the lock is still released', async () => {
    v.configure(['DELAY_lvcreate=40']);
    const child = start(['volume', 'create', 'mail', '1G']);
    await until('lvcreate on data1', () => v.lines('data1', 'lvcreate').length > 0);
    const t0 = Date.now();
    process.kill(-(child.pid as number), 'SIGINT');
    await new Promise((r) => setTimeout(r, 500));
    process.kill(-(child.pid as number), 'SIGINT');
    const r = await child;
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(130);
    expect(String(r.stderr)).toContain('cancelling the commands in flight');
    expect(String(r.stdout)).toContain('data2'); // the summary lists every phase's hosts
    expectCleanHosts();
    // the stand-in creates its LV after the delay: the cancelled lvcreate never did, and the undo, deciding from lvs, removed nothing
    expect(lvs()).toBe('');
    expect(v.lines('data1', 'lvremove')).toEqual([]);
    expect(v.lines('data1', 'lvs').length).toBeGreaterThanOrEqual(2);
    expect(lockState()).toBe('free');
    expect(lastJournal()).toMatchObject({ exitCode: 130, undo: [{ phase: PHASE_LV, ok: true }] });
  });
});

describe('a remote command past its time limit', () => {
  it('is stopped on the host (nothing left running), and the undo decides from lvs read again', async () => {
    const inv = v.lab.variant((t) => t.replace('  connectTimeout: 5\n', '  connectTimeout: 5\n  commandTimeout: 4\n'));
    v.configure(['DELAY_lvcreate=12']);
    const t0 = Date.now();
    const r = await start(['volume', 'create', 'mail', '1G'], inv);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(1);
    expect(Date.now() - t0).toBeLessThan(12_000);
    expect(String(r.stdout)).toContain('data1: stopped after 4 s (time limit)');
    expect(String(r.stdout)).toContain('It was stopped on the host (its process group killed).');
    expectCleanHosts();
    expect(v.lines('data1', 'lvs').length).toBeGreaterThanOrEqual(2); // read before planning, and again before the undo
    expect(lockState()).toBe('free');
    // long after lvcreate's delay, no orphan LV appeared
    await new Promise((res) => setTimeout(res, 9000));
    expect(lvs()).toBe('');
  }, 60_000);
});
