import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPlan } from '../../../src/engine/runner.js';
import { DEFAULT_LOCK_FILE, acquireArgv, lockOwner, lockStatusArgv, parseLockStatus, releaseArgv } from '../../../src/storage/lock.js';
import { breakDecision, lockBreakPlan } from '../../../src/storage/lock-commands.js';
import { PHASE_RELEASE, releaseError, releasePhase, type VolumeSite } from '../../../src/storage/volume.js';
import { fakePool } from '../../support/fake-hosts.js';

/**
 * The storage lock is root's: it lives in a directory only root can write,
 * says who holds it and from which ssh session, and a stale one is broken
 * only when that session is gone. The scripts run here with sh.
 */
const sh = (argv: string[]) => spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8' });
const site: VolumeSite = {
  vg: 'vg_cluster',
  drbd: 'r0',
  meta: 'data1',
  servers: [{ name: 'data1', address: '10.66.6.1', portal: '10.66.6.1:3260' }],
  workers: [],
  iqnPrefix: 'iqn.2016-04.fr.enssib',
  driver: 'lio',
  lockFile: DEFAULT_LOCK_FILE,
};
const res = (stdout: string, exitCode = 0, stderr = '') => ({ exitCode, stdout, stderr, durationMs: 1 });
const status = (file: string) => {
  const r = sh(lockStatusArgv(file));
  return res(r.stdout, r.status ?? 1, r.stderr);
};

describe('where the lock lives', () => {
  it('defaults to a root-only directory, not /run/lock (mode 1777)', () => {
    expect(DEFAULT_LOCK_FILE).toBe('/run/enssib/storage.lock');
  });

  it('creates its directory with mode 0700 and refuses one that other users can write', () => {
    const base = mkdtempSync(join(tmpdir(), 'enssib-lockdir-'));
    const owner = lockOwner(['enssib', 'volume', 'create', 'a', '1G'], new Date(), 'ffff0000');
    const fresh = join(base, 'run-enssib', 'storage.lock');
    expect(sh(acquireArgv(fresh, owner, 0)).status).toBe(0);
    expect((spawnSync('stat', ['-c', '%a', join(base, 'run-enssib')], { encoding: 'utf8' }).stdout ?? '').trim()).toBe('700');
    expect(sh(releaseArgv(fresh, owner)).status).toBe(0);

    for (const mode of [0o1777, 0o777, 0o775, 0o757]) {
      const shared = join(base, `shared-${mode.toString(8)}`);
      mkdirSync(shared);
      chmodSync(shared, mode);
      const r = sh(acquireArgv(join(shared, 'storage.lock'), owner, 0));
      expect(r.status, mode.toString(8)).toBe(1);
      expect(r.stderr).toContain(`the lock directory ${shared} is writable by other users (mode ${mode.toString(8)})`);
      expect(existsSync(join(shared, 'storage.lock'))).toBe(false);
    }
  });
});

describe('lock status', () => {
  const base = mkdtempSync(join(tmpdir(), 'enssib-lockst-'));
  const file = join(base, 'storage.lock');
  const OWNER = 'token=0123abcd user=alice host=laptop pid=4242 since=2026-11-28T10:00:00.000Z command=enssib volume delete old';

  it('reads a free lock, a stale one (session gone), a live one, and one that names no session', () => {
    expect(parseLockStatus(status(file))).toEqual({ held: false, token: null, holder: null, sessionPid: null, alive: 'unknown' });

    writeFileSync(file, `${OWNER}\nsession=999999999 1\n`);
    const stale = parseLockStatus(status(file));
    expect(stale).toEqual({ held: true, token: '0123abcd', holder: 'alice@laptop (pid 4242) since 2026-11-28T10:00:00.000Z: enssib volume delete old', sessionPid: 999999999, alive: 'no' });

    // a live process with its real start time counts as the holder's session; the same pid with another start time (reused) does not
    const start = readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19];
    writeFileSync(file, `${OWNER}\nsession=${process.pid} ${start}\n`);
    expect(parseLockStatus(status(file)).alive).toBe('yes');
    writeFileSync(file, `${OWNER}\nsession=${process.pid} 1\n`);
    expect(parseLockStatus(status(file)).alive).toBe('no');

    writeFileSync(file, `${OWNER}\n`);
    expect(parseLockStatus(status(file))).toMatchObject({ held: true, sessionPid: null, alive: 'unknown' });
  });

  it('a lock that cannot be read is an error, never "free"', () => {
    expect(() => parseLockStatus(res('', 1, 'cat: /run/enssib/storage.lock: Permission denied'))).toThrow(/cannot read the lock \(exit code 1: cat: .*Permission denied\)/);
    expect(() => parseLockStatus(res('garbage\n'))).toThrow(/unexpected answer/);
  });
});

describe('lock break', () => {
  const held = (alive: 'yes' | 'no' | 'unknown', token: string | null = 'abcd') => ({ held: true, token, holder: 'alice@laptop (pid 1) since x: enssib volume create a 1G', sessionPid: 77, alive });

  it('is refused while the holder\'s ssh session is alive, naming the holder and the session', () => {
    const d = breakDecision(site, held('yes'));
    expect(d.kind).toBe('refuse');
    expect(d.kind === 'refuse' && d.error.message).toBe('the storage lock on data1 is held by alice@laptop (pid 1) since x: enssib volume create a 1G, whose ssh session (sshd pid 77 on data1) is still alive');
  });

  it('breaks a stale lock or one whose session is unknown, and does nothing on a free one', () => {
    expect(breakDecision(site, held('no'))).toEqual({ kind: 'break', token: 'abcd' });
    expect(breakDecision(site, held('unknown'))).toEqual({ kind: 'break', token: 'abcd' });
    expect(breakDecision(site, { held: false, token: null, holder: null, sessionPid: null, alive: 'unknown' })).toEqual({ kind: 'free' });
    expect(breakDecision(site, held('no', null)).kind).toBe('refuse');
  });

  it('removes only the lock the user confirmed: another holder since then stops it', async () => {
    const status = (token: string, alive: string) => res(`held\ntoken=${token} user=bob host=h pid=2 since=s command=c\nsession=88 9\nalive=${alive}\n`);
    const run = async (token: string, alive: string) => {
      const pool = fakePool((_h, argv) => (argv[3] === 'enssib-lock-status' ? status(token, alive) : res('')));
      const r = await runPlan(lockBreakPlan(site, 'abcd'), { mode: 'apply', concurrency: 1, hosts: pool });
      return { r, calls: pool.host('data1').calls.filter((c) => c[3] === 'enssib-unlock') };
    };
    const ok = await run('abcd', 'no');
    expect(ok.r.exitCode).toBe(0);
    expect(ok.calls).toEqual([releaseArgv(DEFAULT_LOCK_FILE, { token: 'abcd' })]);
    const changed = await run('ffff', 'no');
    expect(changed.r.phases[0]?.hosts[0]?.error?.message).toMatch(/changed since it was read: now held by bob@h/);
    expect(changed.calls).toEqual([]);
    const revived = await run('abcd', 'yes');
    expect(revived.r.phases[0]?.hosts[0]?.error?.message).toMatch(/is still alive/);
    expect(revived.calls).toEqual([]);
  });
});

describe('a failed release', () => {
  it('says "lock still held" and the run exits non-zero', async () => {
    const owner = lockOwner(['enssib', 'volume', 'create', 'a', '1G'], new Date(), 'abab');
    const pool = fakePool((_h, argv) => (argv[3] === 'enssib-unlock' ? res('', 1, 'enssib: lock still held: cannot remove /run/enssib/storage.lock\n') : res('')));
    const r = await runPlan({ title: 't', mutating: true, phases: [], always: [releasePhase(site, owner)] }, { mode: 'apply', concurrency: 1, hosts: pool });
    expect(r.exitCode).not.toBe(0);
    expect(r.phases.find((p) => p.title === PHASE_RELEASE)?.hosts[0]?.status).toBe('failed');
    expect(releaseError(r, site)?.message).toMatch(/^lock still held: the storage lock \/run\/enssib\/storage.lock on data1 could not be released/);
    expect(releaseError(r, site)?.details.join('\n')).toContain('enssib lock break');
  });
});
