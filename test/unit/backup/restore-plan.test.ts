import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BackupRecord } from '../../../src/backup/catalogue.js';
import { PHASE_ARCHIVE, PHASE_WRITE_BORG, restoreWriteArgv, PHASE_REEXPORT, RESTORING_TAG, restoreName, restoreNewPlan, restoreOutcome, restoreOverPlan, type RestoreRequest } from '../../../src/backup/restore.js';
import type { BackupSite } from '../../../src/backup/site.js';
import { runPlan } from '../../../src/engine/runner.js';
import { ExitCode, type UsageError } from '../../../src/errors.js';
import { asIdentity } from '../../../src/storage/identity.js';
import { lockOwner } from '../../../src/storage/lock.js';
import type { StorageFacts, VolumeSite } from '../../../src/storage/volume.js';
import { PHASE_WRITE_RELOCK, PHASE_WRITE_UNLOCK, decideCreate } from '../../../src/storage/volume-create.js';
import { fakePool } from '../../support/fake-hosts.js';
import { testVolumeSite } from '../../support/volume-site.js';

/** `backup restore` plans with fake hosts: a new volume (create plan + checked write before any export) and --force over an existing one. */

const ok = (stdout = '') => ({ exitCode: 0, stdout, stderr: '', durationMs: 1 });
const site: VolumeSite = testVolumeSite({ driver: 'lio', workers: [], lockFile: '/run/enssib/storage.lock' });
const bsite: BackupSite = { destination: '/srv/backup', remote: null, snapshotSize: { percent: 20 }, retention: { daily: 7 }, maxSinglePathMs: 7_200_000 };
const SHA = 'c'.repeat(64);
const ID = asIdentity('a1a93ec0062020a80f091605229042ee');
const IMAGE = '/srv/backup/kvol/kvol.20261203T020000Z.img.zst';
const record: BackupRecord = {
  format: 1,
  id: 'kvol.20261203T020000Z',
  volume: 'kvol',
  method: 'image',
  time: '2026-12-03T02:00:00.000Z',
  sizeBytes: 268435456,
  compressedBytes: 1234,
  sha256: SHA,
  durationMs: 1500,
  snapshotFillPercent: 0,
  file: 'kvol.20261203T020000Z.img.zst',
  tool: 'enssib 0.1.0',
};

interface World {
  /** LVs on the VG: name → tags. */
  lvs: Map<string, { size: number; tags: string }>;
  sha: string;
  write: 'ok' | 'fail' | 'hang';
  /** Initiators with a session on the target (both servers). */
  sessions: string[];
  /** node01's sessions (iscsiadm -m session -P 3). */
  workerSession: boolean;
  /** The borg archive is missing from the repository (borg info fails). */
  noArchive?: boolean;
}

const world = (over: Partial<World> = {}): World => ({ lvs: new Map([['kvol', { size: 268435456, tags: `enssib,enssib_fs_xfs,enssib_id_${ID}` }]]), sha: SHA, write: 'ok', sessions: [], workerSession: false, ...over });

function responder(w: World) {
  return (host: string, argv: readonly string[]) => {
    const line = argv.join(' ');
    const name = argv[0] === 'sh' || argv[0] === 'bash' ? argv[3] : undefined;
    if (name === 'enssib-lock' || name === 'enssib-unlock') return ok();
    if (line === 'drbdadm role r0') return ok('Primary/Primary\n');
    if (line === 'drbdadm cstate r0') return ok('Connected\n');
    if (line === 'drbdadm dstate r0') return ok('UpToDate/UpToDate\n');
    if (argv[0] === 'vgs') return ok(JSON.stringify({ report: [{ vg: [{ vg_name: 'vg_cluster', vg_size: '2143289344', vg_free: '1073741824', vg_extent_size: '4194304', vg_extent_count: '511', vg_free_count: '256' }] }] }));
    if (argv[0] === 'lvs') {
      const rows = [...w.lvs].map(([n, l]) => ({ lv_name: n, vg_name: 'vg_cluster', lv_size: String(l.size), lv_tags: l.tags, lv_attr: '-wi-a-----', lv_active: 'active', lv_path: `/dev/vg_cluster/${n}`, lv_device_open: '' }));
      return ok(JSON.stringify({ report: [{ lv: rows }] }));
    }
    if (name === 'lio-facts') return ok('');
    if (name === 'enssib-pvs') return ok('drbd /dev/drbd0\npv /dev/drbd0 /dev/drbd0\n');
    if (name === 'target-sessions') return ok(w.sessions.join('\n'));
    if (argv[0] === 'sha256sum') return ok(`${w.sha}  ${argv[2]}\n`);
    if (argv[0] === 'lvcreate') {
      const n = argv[argv.indexOf('--name') + 1] as string;
      w.lvs.set(n, { size: 268435456, tags: argv.flatMap((a, i) => (argv[i - 1] === '--addtag' ? [a] : [])).join(',') });
      return ok();
    }
    if (argv[0] === 'lvremove') {
      w.lvs.delete((argv.at(-1) as string).split('/')[1] as string);
      return ok();
    }
    if (argv[0] === 'lvchange' && (argv[1] === '--addtag' || argv[1] === '--deltag')) {
      const lv = w.lvs.get((argv[3] as string).split('/')[1] as string);
      const tag = argv[2] as string;
      if (lv) lv.tags = [...lv.tags.split(',').filter((t) => t && t !== tag), ...(argv[1] === '--addtag' ? [tag] : [])].join(',');
      return ok();
    }
    if (argv[0] === 'env' && argv.includes('info')) return w.noArchive ? { exitCode: 2, stdout: '', stderr: 'Archive kvol.20261203T020000Z does not exist', durationMs: 1 } : ok('{}');
    if (name === 'enssib-backup-restore' || name === 'enssib-borg-extract') {
      if (w.write === 'fail') return { exitCode: 1, stdout: '', stderr: 'zstd: /srv/backup/kvol/kvol.20261203T020000Z.img.zst: Read error (39) : premature end', durationMs: 1 };
      if (w.write === 'hang') return new Promise<undefined>(() => undefined);
      return ok();
    }
    if (line === 'iscsiadm -m session -P 3') return w.workerSession ? ok('iSCSI Transport Class version 2.0-870\nTarget: iqn.2016-04.fr.enssib:kvol (non-flash)\n\tCurrent Portal: 10.66.6.1:3260,1\n\t\tiSCSI Session State: LOGGED_IN\n') : { exitCode: 21, stdout: '', stderr: 'iscsiadm: No active sessions.', durationMs: 1 };
    return ok();
  };
}

const req = (over: Partial<RestoreRequest> = {}): RestoreRequest => ({ record, target: 'kvol-r12030200', force: false, fs: 'xfs', lockWaitS: 0, writeTimeoutS: 3600, keepOnFailure: false, verifyOn: null, ...over });

async function restore(w: World, r: RestoreRequest, s: VolumeSite = site, signal?: AbortSignal, b: BackupSite = bsite) {
  const hosts = fakePool(responder(w));
  const owner = lockOwner(['enssib', 'backup', 'restore'], new Date(0), 'tok');
  const plan = r.force ? restoreOverPlan(s, b, r, owner) : restoreNewPlan(s, b, r, { identity: ID, owner });
  const report = await runPlan(plan, { mode: 'apply', concurrency: 4, hosts, ...(signal ? { signal } : {}) });
  const calls = (h: string) => hosts.host(h).calls.map((c) => (c[0] === 'sh' || c[0] === 'bash' ? `${c[0]} ${c[3]} ${c.slice(4).join(' ')}` : c.join(' ')));
  return { report, calls, outcome: restoreOutcome(r, report) };
}

const mutations = (calls: string[]) => calls.filter((c) => /^(lvcreate|lvremove|lvchange|targetcli|sha256sum)|enssib-backup-restore|enssib-borg-extract|^env .* borg info /.test(c));

describe('restore into a new volume', () => {
  it('checks the sha256, creates the LV marked incomplete, writes, unmarks, then exports on both servers', async () => {
    const w = world();
    const { report, calls, outcome } = await restore(w, req());
    expect(report.exitCode, JSON.stringify(report.phases.flatMap((p) => p.hosts.filter((h) => h.error)), null, 1)).toBe(ExitCode.ok);
    const m = mutations(calls('data1'));
    expect(m.slice(0, 5)).toEqual([
      `sha256sum -- ${IMAGE}`,
      `lvcreate --yes --wipesignatures y --zero y --activate y --name kvol-r12030200 --size 256m --addtag enssib --addtag enssib_id_${ID} --addtag enssib_fs_xfs --addtag ${RESTORING_TAG} vg_cluster`,
      `bash enssib-backup-restore /dev/vg_cluster/kvol-r12030200 cat -- ${IMAGE}`,
      `lvchange --deltag ${RESTORING_TAG} vg_cluster/kvol-r12030200`,
      'targetcli /backstores/block create name=kvol-r12030200 dev=/dev/vg_cluster/kvol-r12030200 wwn=a1a93ec0-0620-20a8-0f09-1605229042ee',
    ]);
    // No filesystem is made on a restored volume.
    expect(calls('data1').some((c) => c.startsWith('mkfs'))).toBe(false);
    expect(mutations(calls('data2'))).toContain('lvchange --activate y vg_cluster/kvol-r12030200');
    expect(outcome).toMatchObject({ status: 'restored', mode: 'new', incomplete: false, volume: 'kvol-r12030200' });
  });

  it('a damaged backup (sha256 differs from the catalogue) is refused before anything is created', async () => {
    const { report, calls, outcome } = await restore(world({ sha: 'd'.repeat(64) }), req());
    expect(report.exitCode).toBe(1);
    expect(report.stoppedAt).toBe("check the backup's sha256 against the catalogue");
    expect(JSON.stringify(report.phases)).toContain(`the catalogue says ${SHA}`);
    expect(mutations(calls('data1')).filter((c) => !c.startsWith('sha256sum'))).toEqual([]);
    expect(outcome.status).toBe('failed');
  });

  it('a target that exists is a usage error (exit 2) before anything changes', async () => {
    const w = world();
    w.lvs.set('kvol-r12030200', { size: 268435456, tags: 'enssib' });
    const { report, calls } = await restore(w, req());
    const failed = report.phases.flatMap((p) => p.hosts).find((h) => h.status === 'failed');
    expect(failed?.error?.exitCode).toBe(ExitCode.usage);
    expect(failed?.error?.message).toContain('volume "kvol-r12030200" exists');
    expect(mutations(calls('data1')).filter((c) => !c.startsWith('sha256sum'))).toEqual([]);
  });

  it('a write that fails removes the new volume (undo): nothing is left, nothing exported', async () => {
    const w = world({ write: 'fail' });
    const { report, calls, outcome } = await restore(w, req());
    expect(report.exitCode).toBe(1);
    expect(report.stoppedAt).toMatch(/write the backup/);
    expect(w.lvs.has('kvol-r12030200')).toBe(false);
    expect(calls('data1').some((c) => c.startsWith('targetcli /backstores/block create'))).toBe(false);
    expect(outcome).toMatchObject({ status: 'failed', incomplete: false });
  });

  it('with --keep-on-failure, a failed write leaves the volume marked incomplete, unexported', async () => {
    const w = world({ write: 'fail' });
    const { outcome } = await restore(w, req({ keepOnFailure: true }));
    expect(w.lvs.get('kvol-r12030200')?.tags).toContain(RESTORING_TAG);
    expect(outcome).toMatchObject({ status: 'failed', incomplete: true });
  });

  it('Ctrl-C during the write cancels it on the host and removes the new volume', async () => {
    const w = world({ write: 'hang' });
    const ac = new AbortController();
    const t = setInterval(() => {
      if (w.lvs.has('kvol-r12030200')) {
        ac.abort();
        clearInterval(t);
      }
    }, 5);
    const { report, outcome } = await restore(w, req(), site, ac.signal);
    clearInterval(t);
    expect(report.interrupted).toBe(true);
    expect(w.lvs.has('kvol-r12030200')).toBe(false);
    expect(outcome).toMatchObject({ status: 'interrupted', incomplete: false });
  });
});

describe('restore over an existing volume (--force)', () => {
  const over = req({ target: 'kvol', force: true });

  it('marks the LV, writes, unmarks; no LV is created or removed', async () => {
    const { report, calls, outcome } = await restore(world(), over);
    expect(report.exitCode).toBe(ExitCode.ok);
    expect(mutations(calls('data1'))).toEqual([`sha256sum -- ${IMAGE}`, `lvchange --addtag ${RESTORING_TAG} vg_cluster/kvol`, `bash enssib-backup-restore /dev/vg_cluster/kvol cat -- ${IMAGE}`, `lvchange --deltag ${RESTORING_TAG} vg_cluster/kvol`]);
    expect(outcome).toMatchObject({ status: 'restored', mode: 'over' });
  });

  it('is refused while an initiator has a session on the target, before any change', async () => {
    const { report, calls } = await restore(world({ sessions: ['iqn.1993-08.org.debian:01:node01'] }), over);
    expect(report.exitCode).toBe(1);
    expect(JSON.stringify(report.phases)).toContain('has iSCSI sessions on data');
    expect(mutations(calls('data1')).filter((c) => !c.startsWith('sha256sum'))).toEqual([]);
  });

  it('is refused while a worker is logged in to it', async () => {
    const s = testVolumeSite({ driver: 'lio', workers: ['node01'], lockFile: '/run/enssib/storage.lock' });
    const { report, calls } = await restore(world({ workerSession: true }), over, s);
    expect(report.exitCode).toBe(1);
    expect(JSON.stringify(report.phases)).toContain('is logged in on node01');
    expect(mutations(calls('data1'))).toEqual([]);
  });

  it('an LV enssib did not make, or one smaller than the backup, is refused (exit 2)', async () => {
    for (const [lv, msg] of [
      [{ size: 268435456, tags: '' }, 'is not a volume enssib made'],
      [{ size: 134217728, tags: `enssib,enssib_id_${ID}` }, 'is smaller than backup'],
    ] as const) {
      const w = world();
      w.lvs.set('kvol', lv);
      const { report, calls } = await restore(w, over);
      const failed = report.phases.flatMap((p) => p.hosts).find((h) => h.status === 'failed');
      expect(failed?.error?.exitCode).toBe(ExitCode.usage);
      expect(failed?.error?.message).toContain(msg);
      expect(mutations(calls('data1'))).toEqual([]);
    }
  });

  it('a write that fails leaves the volume marked incomplete and says so', async () => {
    const w = world({ write: 'fail' });
    const { outcome } = await restore(w, over);
    expect(w.lvs.get('kvol')?.tags).toContain(RESTORING_TAG);
    expect(outcome).toMatchObject({ status: 'failed', incomplete: true });
  });
});

describe('the default name of the restored volume', () => {
  it('is <volume>-r<MMDDhhmm>, or a usage error naming --to when the driver cannot take it', () => {
    expect(restoreName(testVolumeSite({ driver: 'lio' }), 'mail.20261203T020000Z', 'mail')).toBe('mail-r12030200');
    expect(restoreName(testVolumeSite({ driver: 'scst' }), 'mail.20261203T020000Z', 'mail')).toBe('mail-r12030200');
    expect(() => restoreName(testVolumeSite({ driver: 'scst' }), 'postgres.20261203T020000Z', 'postgres')).toThrow(/"postgres-r12030200", cannot be used: .* at most 16/);
    try {
      restoreName(testVolumeSite({ driver: 'scst' }), 'postgres.20261203T020000Z', 'postgres');
    } catch (e) {
      expect((e as UsageError).details).toEqual(['Name the new volume with --to NAME.']);
      expect((e as UsageError).exitCode).toBe(ExitCode.usage);
    }
  });
});

describe('restore into a new volume: lock scope', () => {
  const STORAGE = '/run/enssib/storage.lock';
  const VOLUME = '/run/enssib/volume-kvol-r12030200.lock';

  /** The lock files on data1 (file → token), what was held at each mutation, and another command that may take the storage lock. */
  function locking(w: World, other: { takeDuringWrite?: boolean } = {}) {
    const locks = new Map<string, string>();
    const seen: string[] = [];
    const base = responder(w);
    const held = () => [...locks.entries()].map(([f, t]) => `${f === STORAGE ? 'storage' : 'volume'}:${t}`).sort().join(' ') || 'none';
    const respond = (host: string, argv: readonly string[]) => {
      const name = argv[0] === 'sh' || argv[0] === 'bash' ? argv[3] : undefined;
      if (name === 'enssib-lock') {
        const f = argv[4] as string;
        if (locks.has(f)) return { exitCode: 75, stdout: '', stderr: `enssib: the storage lock ${f} is held by: token=other user=bob`, durationMs: 1 };
        locks.set(f, /token=(\S+)/.exec(argv[5] as string)?.[1] ?? '?');
        return ok();
      }
      if (name === 'enssib-unlock') {
        if (locks.get(argv[4] as string) === argv[5]) locks.delete(argv[4] as string);
        return ok();
      }
      if (argv[0] === 'cat' && argv[2] === STORAGE) return locks.has(STORAGE) ? ok(`token=${locks.get(STORAGE)} user=root\nsession=1 2\n`) : { exitCode: 1, stdout: '', stderr: 'No such file', durationMs: 1 };
      if (argv[0] === 'lvcreate' || argv[0] === 'lvremove' || argv[0] === 'targetcli' || name === 'enssib-backup-restore') seen.push(`${argv[0] === 'bash' ? 'write' : argv[0]} [${held()}]`);
      if (name === 'enssib-backup-restore' && other.takeDuringWrite) locks.set(STORAGE, 'other');
      return base(host, argv);
    };
    return { locks, seen, respond };
  }

  async function run(w: World, r: RestoreRequest, other: { takeDuringWrite?: boolean } = {}) {
    const l = locking(w, other);
    const hosts = fakePool(l.respond);
    const report = await runPlan(restoreNewPlan(site, bsite, r, { identity: ID, owner: lockOwner(['enssib', 'backup', 'restore'], new Date(0), 'tok') }), { mode: 'apply', concurrency: 4, hosts });
    return { report, ...l, outcome: restoreOutcome(r, report) };
  }

  it('holds the storage lock to create and to export, only the volume lock during the write', async () => {
    const { report, seen, locks } = await run(world(), req());
    expect(report.exitCode).toBe(ExitCode.ok);
    expect(seen[0]).toBe('lvcreate [storage:tok volume:tok]');
    expect(seen.filter((s) => s.startsWith('write'))).toEqual(['write [volume:tok]']);
    expect(seen.filter((s) => s.startsWith('targetcli')).every((s) => s.endsWith('[storage:tok volume:tok]'))).toBe(true);
    expect(report.phases.map((p) => p.title)).toEqual(expect.arrayContaining([PHASE_WRITE_UNLOCK, PHASE_WRITE_RELOCK]));
    expect(locks.size).toBe(0);
  });

  it('a write that fails: the storage lock is taken back before the new volume is removed; both locks free at the end', async () => {
    const w = world({ write: 'fail' });
    const { report, seen, locks } = await run(w, req());
    expect(report.exitCode).toBe(1);
    expect(seen.filter((s) => s.startsWith('lvremove'))).toEqual(['lvremove [storage:tok volume:tok]']);
    expect(w.lvs.has('kvol-r12030200')).toBe(false);
    expect(locks.size).toBe(0);
  });

  it('another command holds the storage lock after the write: the volume is kept (not removed without the lock), unexported, and its lock left to it', async () => {
    const w = world();
    const { report, locks } = await run(w, req(), { takeDuringWrite: true });
    expect(report.exitCode).toBe(1);
    expect(report.stoppedAt).toBe(PHASE_WRITE_RELOCK);
    expect(w.lvs.has('kvol-r12030200')).toBe(true);
    expect(JSON.stringify(report.undo)).toContain('it is not removed without the storage lock (it is not exported)');
    expect(locks.get(STORAGE)).toBe('other');
    expect(locks.has(VOLUME)).toBe(false);
  });

  it('volume create never exports an LV that holds an incomplete restore', () => {
    const f = { host: 'data1', vg: { name: 'vg_cluster', sizeBytes: 2143289344, freeBytes: 1073741824, extentBytes: 4194304 }, lv: { name: 'x', vg: 'vg_cluster', sizeBytes: 268435456, tags: ['enssib', `enssib_id_${ID}`, RESTORING_TAG], active: true } } as unknown as StorageFacts;
    expect(() => decideCreate(site, { name: 'x', sizeBytes: 268435456, fs: 'none', verifyOn: null, pv: false, keepOnFailure: false, lockWaitS: 0 }, ID, f)).toThrow(/holds an incomplete restore \(LV tag enssib_restoring/);
  });
});

describe('restore over an existing volume (--force): its export is offline during the write, and always put back', () => {
  const over = req({ target: 'kvol', force: true });
  const FACTS = readFileSync(join(import.meta.dirname, '../storage/fixtures', 'lio-facts-export.txt'), 'utf8');

  /** kvol exported on both servers (LIO), the exports following targetcli's deletes and creates; `createFails` on data2 makes its re-export fail. */
  async function forced(w: World, opts: { createFails?: boolean; signal?: AbortSignal } = {}) {
    const exported = new Set(['data1', 'data2']);
    const log: string[] = [];
    const base = responder(w);
    const hosts = fakePool((host, argv) => {
      const name = argv[0] === 'sh' || argv[0] === 'bash' ? argv[3] : undefined;
      if (name === 'lio-facts') return ok(exported.has(host) ? FACTS.replaceAll('10.66.6.1', host === 'data1' ? '10.66.6.1' : '10.66.6.2') : '');
      if (argv[0] === 'targetcli' && argv[1] === '/iscsi' && argv[2] === 'delete') exported.delete(host);
      if (argv[0] === 'targetcli' && argv[1] === '/backstores/block' && argv[2] === 'create' && opts.createFails && host === 'data2') return { exitCode: 1, stdout: '', stderr: 'No such path /dev/vg_cluster/kvol', durationMs: 1 };
      if (argv[0] === 'targetcli' && argv[1] === '/iscsi' && argv[2] === 'create') exported.add(host);
      if (argv[0] === 'targetcli' || argv[0] === 'lvchange' || name === 'enssib-backup-restore') log.push(`${host}: ${name === 'enssib-backup-restore' ? 'write' : argv.slice(0, 3).join(' ')}`);
      return base(host, argv);
    });
    const report = await runPlan(restoreOverPlan(site, bsite, over, lockOwner(['enssib', 'backup', 'restore'], new Date(0), 'tok')), { mode: 'apply', concurrency: 4, hosts, ...(opts.signal ? { signal: opts.signal } : {}) });
    return { report, log, exported, hosts, outcome: restoreOutcome(over, report) };
  }

  it('unexports on both servers before the mark and the write, re-exports with the same identity after', async () => {
    const { report, log, exported, hosts, outcome } = await forced(world());
    expect(report.exitCode, JSON.stringify(report.phases.flatMap((p) => p.hosts.filter((h) => h.error)), null, 1)).toBe(ExitCode.ok);
    const at = (l: string) => log.indexOf(l);
    expect(at('data1: targetcli /iscsi delete')).toBeLessThan(at('data1: lvchange --addtag enssib_restoring'));
    expect(at('data2: targetcli /iscsi delete')).toBeLessThan(at('data1: write'));
    expect(at('data1: targetcli /iscsi create')).toBeGreaterThan(at('data1: lvchange --deltag enssib_restoring'));
    expect(at('data2: targetcli /iscsi create')).toBeGreaterThan(at('data1: write'));
    expect(hosts.host('data2').calls.map((c) => c.join(' '))).toContain('targetcli /backstores/block create name=kvol dev=/dev/vg_cluster/kvol wwn=a1a93ec0-0620-20a8-0f09-1605229042ee');
    expect([...exported].sort()).toEqual(['data1', 'data2']);
    expect(outcome).toMatchObject({ status: 'restored', unexported: [] });
  });

  it('a write that fails: the volume is exported again (marked incomplete), and the outcome says so', async () => {
    const w = world({ write: 'fail' });
    const { report, exported, outcome } = await forced(w);
    expect(report.exitCode).toBe(1);
    expect([...exported].sort()).toEqual(['data1', 'data2']);
    expect(w.lvs.get('kvol')?.tags).toContain(RESTORING_TAG);
    expect(outcome).toMatchObject({ status: 'failed', incomplete: true, unexported: [] });
  });

  it('Ctrl-C during the write: stopped, then exported again on both servers', async () => {
    const w = world({ write: 'hang' });
    const ac = new AbortController();
    const t = setInterval(() => {
      if (w.lvs.get('kvol')?.tags.includes(RESTORING_TAG)) {
        ac.abort();
        clearInterval(t);
      }
    }, 5);
    const { report, exported, outcome } = await forced(w, { signal: ac.signal });
    clearInterval(t);
    expect(report.interrupted).toBe(true);
    expect([...exported].sort()).toEqual(['data1', 'data2']);
    expect(outcome).toMatchObject({ status: 'interrupted', incomplete: true, unexported: [] });
  });

  it('a re-export that fails is reported: where the volume is left unexported', async () => {
    const { report, exported, outcome } = await forced(world(), { createFails: true });
    expect(report.exitCode).not.toBe(ExitCode.ok);
    expect([...exported]).toEqual(['data1']);
    expect(outcome).toMatchObject({ status: 'failed', incomplete: false, unexported: ['data2'] });
    expect(report.phases.find((p) => p.title === PHASE_REEXPORT)?.hosts.find((h) => h.host === 'data2')?.error?.command).toMatch(/targetcli \/backstores\/block create/);
  });

  it('nothing is taken offline when the refusals stop the run (a session on the target)', async () => {
    const { log, exported } = await forced(world({ sessions: ['iqn.1993-08.org.debian:01:node01'] }));
    expect(log).toEqual([]);
    expect(exported.size).toBe(2);
  });
});

describe('restore of a borg backup (backup.method: borg)', () => {
  const repo = { path: '/srv/backup/borg', remote: null, passphraseFile: '/root/enssib-borg.passphrase' };
  const borgSite: BackupSite = { ...bsite, borg: repo };
  const { sha256: _sha, file: _file, ...common } = record;
  const borgRecord: BackupRecord = { ...common, method: 'borg', archive: record.id, deduplicatedBytes: 1048576 };
  const ENV = `env BORG_PASSCOMMAND=cat -- /root/enssib-borg.passphrase BORG_RSH=ssh -o BatchMode=yes -o StrictHostKeyChecking=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=no BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=no BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=NO BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=NO borg`;

  it('into a new volume: the archive found first, the LV created marked, borg extract --stdout onto it, unmarked, exported', async () => {
    const w = world();
    const { report, calls, outcome } = await restore(w, req({ record: borgRecord }), site, undefined, borgSite);
    expect(report.exitCode, JSON.stringify(report.phases.flatMap((p) => p.hosts.filter((h) => h.error)), null, 1)).toBe(ExitCode.ok);
    expect(mutations(calls('data1')).slice(0, 5)).toEqual([
      `${ENV} info --json /srv/backup/borg::kvol.20261203T020000Z`,
      `lvcreate --yes --wipesignatures y --zero y --activate y --name kvol-r12030200 --size 256m --addtag enssib --addtag enssib_id_${ID} --addtag enssib_fs_xfs --addtag ${RESTORING_TAG} vg_cluster`,
      `bash enssib-borg-extract /dev/vg_cluster/kvol-r12030200 ${ENV} extract --stdout /srv/backup/borg::kvol.20261203T020000Z`,
      `lvchange --deltag ${RESTORING_TAG} vg_cluster/kvol-r12030200`,
      'targetcli /backstores/block create name=kvol-r12030200 dev=/dev/vg_cluster/kvol-r12030200 wwn=a1a93ec0-0620-20a8-0f09-1605229042ee',
    ]);
    expect(report.phases.map((p) => p.title)).toContain(PHASE_WRITE_BORG);
    expect(calls('data1').some((c) => c.startsWith('sha256sum'))).toBe(false);
    expect(outcome).toMatchObject({ status: 'restored', mode: 'new', incomplete: false });
  });

  it('an archive the repository does not have: refused before anything is created', async () => {
    const w = world({ noArchive: true });
    const { report, calls, outcome } = await restore(w, req({ record: borgRecord }), site, undefined, borgSite);
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(report.stoppedAt).toBe(PHASE_ARCHIVE);
    expect(calls('data1').some((c) => c.startsWith('lvcreate'))).toBe(false);
    expect(outcome.status).toBe('failed');
  });

  it('--force over the volume: the same refusals and exports; the write is borg extract', async () => {
    const w = world();
    const { report, calls, outcome } = await restore(w, req({ record: borgRecord, target: 'kvol', force: true }), site, undefined, borgSite);
    expect(report.exitCode, JSON.stringify(report.phases.flatMap((p) => p.hosts.filter((h) => h.error)), null, 1)).toBe(ExitCode.ok);
    expect(calls('data1')).toContain(`bash enssib-borg-extract /dev/vg_cluster/kvol ${ENV} extract --stdout /srv/backup/borg::kvol.20261203T020000Z`);
    expect(outcome).toMatchObject({ status: 'restored', mode: 'over' });
  });

  it('a failed extract into a new volume removes it (the create plan\u2019s undo)', async () => {
    const w = world({ write: 'fail' });
    const { report, outcome } = await restore(w, req({ record: borgRecord }), site, undefined, borgSite);
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(w.lvs.has('kvol-r12030200')).toBe(false);
    expect(outcome).toMatchObject({ status: 'failed', incomplete: false });
  });

  it('a borg backup while the inventory\u2019s method is image: a configuration error naming what to set', () => {
    expect(() => restoreWriteArgv(bsite, borgRecord, '/dev/vg_cluster/x')).toThrow(/backup\.method is not borg: cannot restore them/);
  });
});
