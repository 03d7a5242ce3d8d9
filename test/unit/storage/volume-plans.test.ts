import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPlan } from '../../../src/engine/runner.js';
import type { Facts } from '../../../src/engine/types.js';
import { ConnectionError, UsageError } from '../../../src/errors.js';
import { asIdentity } from '../../../src/storage/identity.js';
import { lockOwner } from '../../../src/storage/lock.js';
import { parseLioFacts, lioExportActions, lioVolumeState } from '../../../src/storage/targets/lio.js';
import { createPlan, decideCreate, type CreateRequest } from '../../../src/storage/volume-create.js';
import { parseStorageFacts, storageChecks, validateVolumeName, type VolumeSite } from '../../../src/storage/volume.js';
import { fakePool } from '../../support/fake-hosts.js';
import { testVolumeSite } from '../../support/volume-site.js';

const fx = (f: string) => readFileSync(join(import.meta.dirname, 'fixtures', f), 'utf8');
const ok = (stdout: string) => ({ exitCode: 0, stdout, stderr: '', durationMs: 1 });
const G = 1024 ** 3;

const site = (driver: 'scst' | 'lio'): VolumeSite => testVolumeSite({ driver });
const req = (over: Partial<CreateRequest> = {}): CreateRequest => ({ name: 'kvol', sizeBytes: 256 * 1024 ** 2, fs: 'ext4', verifyOn: 'node01', pv: false, keepOnFailure: false, lockWaitS: 0, ...over });
const ID = asIdentity('0123456789abcdef0123456789abcdef');

/** Storage facts of a LIO server from captured outputs (the order storageChecks runs them). */
function lioFacts(lvs: string, lio = '', pvs = false): Facts {
  return [ok('Primary/Primary\n'), ok('Connected\n'), ok('UpToDate/UpToDate\n'), ok(fx('vgs-kernel.json')), ok(lvs), ...(pvs ? [ok('drbd /dev/drbd0\npv /dev/drbd0 /dev/drbd0\n')] : []), ok(lio)];
}

describe('what create decides on the metadata host', () => {
  const s = site('lio');
  const facts = (lvs: string) => parseStorageFacts(s, 'data1', 'kvol', lioFacts(lvs));
  it('plans a new LV with the candidate identity, size rounded to extents', () => {
    expect(decideCreate(s, req({ sizeBytes: 5 * 1024 ** 2 }), ID, facts(fx('lvs-kernel.json')))).toEqual({ identity: ID, existed: false, fs: 'ext4', sizeBytes: 8 * 1024 ** 2, mkfs: true });
  });
  it('keeps the identity of an existing LV, refuses another size, an untagged LV, and more than the free space', () => {
    const d = decideCreate(s, req(), ID, facts(fx('lvs-kernel-volume.json')));
    expect(d).toMatchObject({ identity: 'a1a93ec0062020a80f091605229042ee', existed: true, fs: 'ext4', sizeBytes: 268435456 });
    expect(() => decideCreate(s, req({ sizeBytes: 512 * 1024 ** 2 }), ID, facts(fx('lvs-kernel-volume.json')))).toThrow(UsageError);
    try {
      decideCreate(s, req({ sizeBytes: 512 * 1024 ** 2 }), ID, facts(fx('lvs-kernel-volume.json')));
    } catch (e) {
      expect((e as UsageError).message).toBe('volume "kvol" exists with size 256M, not 512M');
      expect((e as UsageError).details).toEqual(['To grow it: enssib volume resize kvol 512M']);
    }
    const untagged = fx('lvs-kernel-volume.json').replace(/"lv_tags":"[^"]*"/, '"lv_tags":""');
    expect(() => decideCreate(s, req(), ID, facts(untagged))).toThrow(/enssib did not create it/);
    expect(() => decideCreate(s, req({ name: 'big', sizeBytes: 3 * G }), ID, facts(fx('lvs-kernel.json')))).toThrow(/size 3G is more than volume group vg_cluster has free on data1 \(2G\)/);
  });
  it('names volumes within the driver limits', () => {
    expect(validateVolumeName(site('lio'), 'a'.repeat(63))).toHaveLength(63);
    expect(() => validateVolumeName(site('scst'), 'a'.repeat(17))).toThrow(/at most 16/);
    expect(() => validateVolumeName({ driver: 'lio', iqnPrefix: `iqn.2016-04.${'x'.repeat(220)}` }, 'mail')).toThrow(/longer than 223 bytes/);
  });
  it('reads a partial LIO export (attributes not set yet) and completes only that', () => {
    const st = lioVolumeState(parseLioFacts(fx('lio-facts-export-data2.txt')), 'kvol', 'iqn.2016-04.fr.enssib:kvol');
    const id = asIdentity('a1a93ec0062020a80f091605229042ee');
    const acts = lioExportActions(st, { name: 'kvol', dev: '/dev/vg_cluster/kvol', identity: id, iqn: 'iqn.2016-04.fr.enssib:kvol', portal: '10.66.6.2:3260' }).actions;
    expect(acts.map((a) => (a.kind === 'command' ? a.argv.slice(1, 4).join(' ') : a.kind))).toEqual(['/iscsi/iqn.2016-04.fr.enssib:kvol/tpg1 set attribute', 'saveconfig']);
  });
});

describe('create run with fake hosts', () => {
  /** A LIO site in memory: data2 fails `targetcli` (export and undo); workers untouched. */
  function responder(opts: { data2Down?: boolean; targetcliFails?: boolean }) {
    return (host: string, argv: readonly string[]) => {
      if (opts.data2Down && host === 'data2') return new ConnectionError('data2', 'connection to data2 timed out');
      const line = argv.join(' ');
      if (argv[0] === 'sh' && argv[3] === 'enssib-lock') return ok('');
      if (argv[0] === 'sh' && argv[3] === 'enssib-unlock') return ok('');
      const checks = storageChecks(site('lio'), { pvs: true });
      const i = checks.findIndex((c) => c.join(' ') === line);
      if (i >= 0) return lioFacts(fx('lvs-kernel.json'), '', true)[i];
      if (opts.targetcliFails && host === 'data2' && (argv[0] === 'targetcli' || (argv[0] === 'sh' && argv[3] === 'undo-export'))) return { exitCode: 1, stderr: 'targetcli: injected failure\n' };
      return ok('');
    };
  }

  it('stops before any change when a storage server is unreachable', async () => {
    const pool = fakePool(responder({ data2Down: true }));
    const r = await runPlan(createPlan(site('lio'), req(), { identity: ID, owner: lockOwner(['t']) }), { mode: 'apply', concurrency: 4, hosts: pool });
    expect(r.stoppedAt).toBe('read DRBD, LVM and target state on the storage servers');
    expect(pool.host('data1').calls.map((c) => c[0])).not.toContain('lvcreate');
    expect(r.phases.at(-1)?.title).toBe('release the storage lock');
    expect(r.phases.at(-1)?.hosts[0]?.status).toBe('done');
  });

  it('undoes in reverse order; keeps the LV and says so when an undo on the other server failed', async () => {
    const pool = fakePool(responder({ targetcliFails: true }));
    const r = await runPlan(createPlan(site('lio'), req(), { identity: ID, owner: lockOwner(['t']) }), { mode: 'apply', concurrency: 4, hosts: pool });
    expect(r.stoppedAt).toBe('export on both storage servers with one device identity');
    expect(r.undo.map((u) => [u.phase.slice(0, 20), u.host, u.ok])).toEqual([
      ['export on both stora', 'data1', true],
      ['export on both stora', 'data2', false],
      ['make the filesystem ', 'data2', true],
      ['create the logical v', 'data1', false],
    ]);
    const lvUndo = r.undo.at(-1);
    expect(lvUndo?.error?.message).toMatch(/vg_cluster\/kvol left on data1: removing it while data2 still exports or maps it/);
    expect(pool.host('data1').calls.some((c) => c[0] === 'lvremove' || c[3] === 'undo-lv')).toBe(false);
  });

  it('with --keep-on-failure undoes nothing', async () => {
    const pool = fakePool(responder({ targetcliFails: true }));
    const r = await runPlan(createPlan(site('lio'), req({ keepOnFailure: true }), { identity: ID, owner: lockOwner(['t']) }), { mode: 'apply', concurrency: 4, hosts: pool });
    expect(r.stoppedAt).toBe('export on both storage servers with one device identity');
    expect(r.undo).toEqual([]);
  });
});
