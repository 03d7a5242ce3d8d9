import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { drbdProblems, parseDrbdadm, parseProcDrbd } from '../../../src/storage/drbd.js';
import { NEW_IDENTITY, asIdentity, identityFromTags, identityTag, isIdentity, lioSerial, lioWwid, newIdentity, scstIdentity } from '../../../src/storage/identity.js';
import { LOCK_HELD_EXIT, acquireArgv, describeOwner, formatOwner, heldBy, lockOwner, releaseArgv } from '../../../src/storage/lock.js';

const fx = (f: string) => readFileSync(join(import.meta.dirname, 'fixtures', f), 'utf8');
const ok = (stdout: string) => ({ exitCode: 0, stdout: `${stdout}\n`, stderr: '', durationMs: 1 });

describe('DRBD state', () => {
  it('accepts dual-primary, Connected, UpToDate/UpToDate (8.4 drbdadm)', () => {
    const s = parseDrbdadm(ok('Primary/Primary'), ok('Connected'), ok('UpToDate/UpToDate'));
    expect(s).toEqual({ role: 'Primary', peerRoles: ['Primary'], cstates: ['Connected'], disk: 'UpToDate', peerDisks: ['UpToDate'] });
    expect(drbdProblems('r0', s)).toEqual([]);
  });

  it('accepts DRBD 9 output (no peer role in `role`)', () => {
    expect(drbdProblems('r0', parseDrbdadm(ok('Primary'), ok('Connected'), ok('UpToDate/UpToDate')))).toEqual([]);
  });

  it.each([
    ['a resync', 'Primary/Primary', 'SyncSource', 'UpToDate/Inconsistent', /SyncSource, not Connected|not UpToDate\/UpToDate/],
    ['a fresh device', 'Primary/Primary', 'Connected', 'Inconsistent/Inconsistent', /Inconsistent\/Inconsistent, not UpToDate/],
    ['a split brain', 'Primary/Unknown', 'StandAlone', 'UpToDate/DUnknown', /StandAlone .*split brain/],
    ['a peer gone', 'Primary/Unknown', 'WFConnection', 'UpToDate/DUnknown', /WFConnection, not Connected/],
    ['a secondary', 'Secondary/Primary', 'Connected', 'UpToDate/UpToDate', /is Secondary here/],
    ['a secondary peer', 'Primary/Secondary', 'Connected', 'UpToDate/UpToDate', /peer of r0 is Secondary/],
  ])('refuses %s', (_what, role, cstate, dstate, re) => {
    const p = drbdProblems('r0', parseDrbdadm(ok(role), ok(cstate), ok(dstate)));
    expect(p.join('\n')).toMatch(re);
  });

  it('refuses when drbdadm fails (unknown resource)', () => {
    const fail = { exitCode: 10, stdout: '', stderr: "'r9' not defined in your config (for this host).\n", durationMs: 1 };
    expect(drbdProblems('r9', parseDrbdadm(fail, fail, fail))).toEqual(["DRBD resource r9: 'r9' not defined in your config (for this host)."]);
  });

  it('reads /proc/drbd of 8.4', () => {
    expect(drbdProblems('r0', parseProcDrbd(fx('drbd84.txt')))).toEqual([]);
    expect(drbdProblems('r0', parseProcDrbd(fx('drbd84-splitbrain.txt'))).join(' ')).toMatch(/StandAlone/);
    expect(parseProcDrbd(fx('drbd84.txt'), 3)).toEqual({ error: 'no DRBD minor 3 in /proc/drbd' });
  });
});

describe('device identity', () => {
  it('is 128 random bits in hex, stored as an LVM tag', () => {
    const a = newIdentity();
    const b = newIdentity();
    expect(isIdentity(a)).toBe(true);
    expect(a).not.toBe(b);
    expect(identityFromTags(['enssib', identityTag(a), 'enssib_fs_ext4'])).toBe(a);
    expect(identityFromTags(['enssib'])).toBeNull();
    expect(() => identityFromTags([identityTag(a), identityTag(b)])).toThrow(/2 identity tags/);
    expect(() => identityFromTags(['enssib_id_xyz'])).toThrow(/not 32 hex digits/);
    expect(/^[A-Za-z0-9_+.\-/=!:&#]+$/.test(identityTag(a))).toBe(true); // LVM tag characters
  });

  it('derives each driver form within its limits, the same on both servers', () => {
    const id = asIdentity('6f36c72ff5079f6bbe476fc2af6665f2');
    expect(scstIdentity(id)).toEqual({ t10DevId: '6f36c72ff5079f6bbe476fc2', usn: '6f36c72ff5079f6b' });
    expect(lioSerial(id)).toBe('6f36c72f-f507-9f6b-be47-6fc2af6665f2');
    expect(lioSerial(id)).toMatch(/^[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$/); // what targetcli accepts as a unit serial
    // LIO: NAA 6, company id 0x001405, then the first 25 hex digits of the serial
    expect(lioWwid(id)).toBe('360014056f36c72ff5079f6bbe476fc2a');
  });

  it('shows the client dry run placeholder in every driver form, never a made-up value', () => {
    expect(identityTag(NEW_IDENTITY)).toBe('enssib_id_<new identity>');
    expect(scstIdentity(NEW_IDENTITY)).toEqual({ t10DevId: '<new identity>', usn: '<new identity>' });
    expect(lioSerial(NEW_IDENTITY)).toBe('<new identity>');
    expect(isIdentity(NEW_IDENTITY)).toBe(false);
  });

  it('injects the randomness (deterministic in tests)', () => {
    expect(newIdentity((n) => Buffer.alloc(n, 0xab))).toBe('ab'.repeat(16));
  });
});

describe('storage lock (the real script, run here with sh)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-lock-'));
  const file = join(dir, 'sub', 'storage.lock');
  const sh = (argv: string[]) => spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8' });

  it('takes a free lock, refuses a held one naming the owner, releases only its own', () => {
    const alice = lockOwner(['enssib', 'volume', 'create', 'mail', '200G'], new Date('2026-11-28T10:00:00Z'), 'aaaa1111');
    const bob = lockOwner(['enssib', 'volume', 'delete', 'old'], new Date('2026-11-28T10:01:00Z'), 'bbbb2222');
    expect(sh(acquireArgv(file, alice, 0)).status).toBe(0);
    // the owner line, then the holder's ssh session on this host ("0 0": these tests run outside ssh, unless their runner itself does)
    expect(readFileSync(file, 'utf8')).toMatch(new RegExp(`^${formatOwner(alice).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\nsession=\\d+ \\d+\n$`));

    const t0 = Date.now();
    const held = sh(acquireArgv(file, bob, 2));
    expect(held.status).toBe(LOCK_HELD_EXIT);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900); // it waited
    expect(heldBy(held.stderr)).toBe(`${alice.user}@${alice.host} (pid ${alice.pid}) since 2026-11-28T10:00:00.000Z: enssib volume create mail 200G`);

    expect(sh(releaseArgv(file, bob)).status).toBe(0); // not bob's: stays
    expect(readFileSync(file, 'utf8')).toContain('token=aaaa1111');
    expect(sh(releaseArgv(file, alice)).status).toBe(0);
    expect(sh(acquireArgv(file, bob, 0)).status).toBe(0);
    expect(sh(releaseArgv(file, bob)).status).toBe(0);
  });

  it('gets the lock as soon as it is released while waiting', () => {
    const a = lockOwner(['enssib', 'a'], new Date(), 'cccc');
    const b = lockOwner(['enssib', 'b'], new Date(), 'dddd');
    expect(sh(acquireArgv(file, a, 0)).status).toBe(0);
    const releaseLater = `sleep 1; ${releaseArgv(file, a).map((x) => `'${x.replace(/'/g, `'\\''`)}'`).join(' ')}`;
    execFileSync('sh', ['-c', `(${releaseLater}) >/dev/null 2>&1 &`]);
    const r = sh(acquireArgv(file, b, 10));
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/waiting for the storage lock held by: token=cccc/);
    expect(readFileSync(file, 'utf8')).toContain('token=dddd');
    sh(releaseArgv(file, b));
  });

  it('keeps owner lines on one line and readable', () => {
    const o = lockOwner(['enssib', 'volume', 'create', 'x\ny', '1G'], new Date('2026-01-01T00:00:00Z'), 'eeee');
    expect(formatOwner(o)).not.toContain('\n');
    expect(describeOwner('garbage')).toBe('garbage');
    writeFileSync(join(dir, 'x'), '');
  });
});
