import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RECORD, snapshotOutcome, snapshotPlan, type SnapshotRequest } from '../../../src/backup/snapshot.js';
import type { BackupSite } from '../../../src/backup/site.js';
import { runPlan } from '../../../src/engine/runner.js';
import { ExitCode } from '../../../src/errors.js';
import { lockOwner } from '../../../src/storage/lock.js';
import type { VolumeSite } from '../../../src/storage/volume.js';
import { fakePool } from '../../support/fake-hosts.js';
import { testVolumeSite } from '../../support/volume-site.js';

const fx = (f: string) => readFileSync(join(import.meta.dirname, '../storage/fixtures', f), 'utf8');
const ok = (stdout = '') => ({ exitCode: 0, stdout, stderr: '', durationMs: 1 });

const site: VolumeSite = testVolumeSite({ driver: 'lio', lockFile: '/run/enssib/storage.lock' });
const bsite: BackupSite = { destination: '/srv/backup', snapshotSize: { percent: 20 }, retention: { daily: 7 } };
const req: SnapshotRequest = { volume: 'kvol', id: 'kvol.20261203T020000Z', lockWaitS: 0, tool: 'enssib 0.1.0', copyTimeoutS: 3600 };
const ID = 'a1a93ec0062020a80f091605229042ee';
const SHA = 'b'.repeat(64);

interface World {
  /** Another command holds the volume's lock. */
  locked?: boolean;
  lv: boolean;
  tags: string;
  snapshot: null | { attr: string; pct: string; origin: string };
  exported2: boolean;
  active2: boolean;
  vgFree: number;
  copy: 'ok' | 'fail' | 'hang';
  /** What happens to the snapshot during the copy. */
  fillDuringCopy?: boolean;
}

function world(over: Partial<World> = {}): World {
  return { lv: true, tags: `enssib,enssib_fs_ext4,enssib_id_${ID}`, snapshot: null, exported2: true, active2: true, vgFree: 2143289344 - 268435456, copy: 'ok', ...over };
}

function lvsJson(w: World, host: string): string {
  const rows: object[] = [];
  const active = host === 'data1' || w.active2;
  if (w.lv) rows.push({ lv_name: 'kvol', vg_name: 'vg_cluster', lv_size: '268435456', lv_tags: w.tags, lv_attr: active ? '-wi-ao----' : '-wi-------', lv_active: active ? 'active' : '', lv_path: '/dev/vg_cluster/kvol', lv_device_open: active ? 'open' : '', origin: '', data_percent: '' });
  // The VG's metadata is shared: data2 lists data1's snapshot too, inactive there.
  const snapAttr = (a: string) => (host === 'data1' ? a : `${a.slice(0, 4)}-${a.slice(5)}`);
  if (w.snapshot) rows.push({ lv_name: 'kvol-enssib-snap', vg_name: 'vg_cluster', lv_size: '268435456', lv_tags: '', lv_attr: snapAttr(w.snapshot.attr), lv_active: host === 'data1' ? 'active' : '', lv_path: '', lv_device_open: '', origin: w.snapshot.origin, data_percent: w.snapshot.pct });
  return JSON.stringify({ report: [{ lv: rows }] });
}

function responder(w: World) {
  return (host: string, argv: readonly string[]) => {
    const line = argv.join(' ');
    const name = argv[0] === 'sh' || argv[0] === 'bash' ? argv[3] : undefined;
    if (name === 'enssib-lock' && w.locked) return { exitCode: 75, stdout: '', stderr: 'enssib: the storage lock /run/enssib/volume-kvol.lock is held by: token=x user=root host=adm pid=7 since=t command=enssib backup snapshot kvol', durationMs: 1 };
    if (name === 'enssib-lock' || name === 'enssib-unlock') return ok();
    if (line === 'drbdadm role r0') return ok('Primary/Primary\n');
    if (line === 'drbdadm cstate r0') return ok('Connected\n');
    if (line === 'drbdadm dstate r0') return ok('UpToDate/UpToDate\n');
    if (argv[0] === 'vgs') return ok(JSON.stringify({ report: [{ vg: [{ vg_name: 'vg_cluster', vg_size: '2143289344', vg_free: String(w.vgFree), vg_extent_size: '4194304', vg_extent_count: '511', vg_free_count: String(Math.floor(w.vgFree / 4194304)) }] }] }));
    if (argv[0] === 'lvs') return ok(lvsJson(w, host));
    if (name === 'lio-facts') {
      if (host === 'data1') return ok(fx('lio-facts-export.txt'));
      return ok(w.exported2 ? fx('lio-facts-export.txt').replaceAll('10.66.6.1', '10.66.6.2') : '');
    }
    if (argv[0] === 'lvcreate') {
      w.snapshot = { attr: 'swi-a-s---', pct: '0.00', origin: 'kvol' };
      return ok();
    }
    if (argv[0] === 'lvremove') {
      w.snapshot = null;
      return ok();
    }
    if (argv[0] === 'lvchange' && host === 'data2') {
      w.active2 = argv[2] === 'y';
      return ok();
    }
    if (argv[0] === 'targetcli' && argv.includes('delete')) w.exported2 = false;
    if (argv[0] === 'targetcli' && argv[1] === '/iscsi' && argv[2] === 'create') w.exported2 = true;
    if (name === 'enssib-backup-copy') {
      if (w.fillDuringCopy && w.snapshot) w.snapshot = { ...w.snapshot, attr: 'Swi-I-s---', pct: '100.00' };
      if (w.copy === 'fail') return { exitCode: 1, stdout: '', stderr: 'zstd: error 70 : Write error : No space left on device', durationMs: 1 };
      if (w.copy === 'hang') return new Promise<undefined>(() => undefined);
      return ok();
    }
    if (name === 'enssib-backup-result') return ok(`${SHA}  -\n1764727200000 1764727201500\n1234\n268435456\n`);
    if (line === 'iscsiadm -m session -P 3') return host === 'node01' ? ok(fx('iscsiadm-session-P3.txt').replaceAll('smoke', 'kvol')) : { exitCode: 21, stdout: '', stderr: 'iscsiadm: No active sessions.', durationMs: 1 };
    if (line === 'multipath -ll') return ok(host === 'node01' ? fx('multipath-ll-kernel.txt') : '');
    return ok();
  };
}

async function backup(w: World, signal?: AbortSignal) {
  const hosts = fakePool(responder(w));
  const report = await runPlan(snapshotPlan(site, bsite, req, lockOwner(['enssib', 'backup'], new Date(0), 'tok')), { mode: 'apply', concurrency: 4, hosts, ...(signal ? { signal } : {}) });
  const calls = (h: string) => hosts.host(h).calls.map((c) => (c[0] === 'sh' || c[0] === 'bash' ? `${c[0]} ${c[3]} ${c.slice(4).join(' ')}` : c.join(' ')));
  return { report, hosts, calls, outcome: snapshotOutcome(req, report) };
}

const mutations = (calls: string[]) => calls.filter((c) => /^(lvcreate|lvremove|lvchange|targetcli|mv|rm|find|mkdir|iscsiadm -m node|sync)|enssib-backup-copy|undo-export/.test(c));

describe('backup snapshot, one volume, with fake hosts', () => {
  it('takes data2 offline, snapshots, copies, keeps the copy with its record, and puts everything back', async () => {
    const w = world();
    const { report, hosts, calls, outcome } = await backup(w);
    expect(report.exitCode, JSON.stringify(report.phases.flatMap((p) => p.hosts.filter((h) => h.error)), null, 1)).toBe(ExitCode.ok);
    expect(mutations(calls('data1'))).toEqual([
      'find /srv/backup/kvol -maxdepth 1 -name .*.partial* -delete',
      'mkdir -p -m 0700 -- /srv/backup/kvol',
      'lvcreate --yes --snapshot --name kvol-enssib-snap --size 52m vg_cluster/kvol',
      'bash enssib-backup-copy /dev/vg_cluster/kvol-enssib-snap /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial',
      'mv -T -- /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial /srv/backup/kvol/kvol.20261203T020000Z.img.zst',
      'sync -- /srv/backup/kvol',
      'lvremove --yes vg_cluster/kvol-enssib-snap',
      'rm -f -- /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial.sha256 /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial.time',
    ]);
    expect(mutations(calls('data2'))).toEqual([
      'targetcli /iscsi delete iqn.2016-04.fr.enssib:kvol',
      'targetcli /backstores/block delete kvol',
      'targetcli saveconfig',
      'lvchange --activate n vg_cluster/kvol',
      'lvchange --activate y vg_cluster/kvol',
      'targetcli /backstores/block create name=kvol dev=/dev/vg_cluster/kvol wwn=a1a93ec0-0620-20a8-0f09-1605229042ee',
      'targetcli /iscsi create iqn.2016-04.fr.enssib:kvol',
      'targetcli /iscsi/iqn.2016-04.fr.enssib:kvol/tpg1/portals create ip_address=10.66.6.2 ip_port=3260',
      'targetcli /iscsi/iqn.2016-04.fr.enssib:kvol/tpg1/luns create storage_object=/backstores/block/kvol lun=0',
      'targetcli /iscsi/iqn.2016-04.fr.enssib:kvol/tpg1 set attribute generate_node_acls=1 cache_dynamic_acls=1 demo_mode_write_protect=0 authentication=0',
      'targetcli saveconfig',
    ]);
    // node01 has the volume: the path through data2 comes back and is checked; node02 has no session: left alone.
    expect(mutations(calls('node01'))).toEqual(['iscsiadm -m node -T iqn.2016-04.fr.enssib:kvol -p 10.66.6.2:3260 --login', 'iscsiadm -m node -T iqn.2016-04.fr.enssib:kvol -p 10.66.6.2:3260 --rescan']);
    expect(calls('node01').at(-1)).toBe('multipath -ll');
    expect(mutations(calls('node02'))).toEqual([]);
    expect(calls('data1').at(-1)).toMatch(/^sh enssib-unlock \/run\/enssib\/volume-kvol\.lock tok$/);
    const record = JSON.parse(hosts.host('data1').files.get('/srv/backup/kvol/kvol.20261203T020000Z.json') ?? '{}');
    expect(record).toEqual({ format: 1, id: req.id, volume: 'kvol', method: 'image', time: '2025-12-03T02:00:00.000Z', sizeBytes: 268435456, compressedBytes: 1234, sha256: SHA, durationMs: 1500, snapshotFillPercent: 0, file: 'kvol.20261203T020000Z.img.zst', tool: 'enssib 0.1.0' });
    expect(outcome).toMatchObject({ status: 'ok', pathsOk: true, error: null });
    expect(outcome.singlePathMs).not.toBeNull();
    expect(report.findings.filter((f) => f.severity === 'info').map((f) => f.found)).toEqual(['kvol: map 36001405e0b96a6492d74e4c8a4876db0 with 2 active paths']);
  });

  it('a copy that fails is not catalogued, and the snapshot, data2 and the lock are still put back', async () => {
    const w = world({ copy: 'fail' });
    const { report, hosts, calls, outcome } = await backup(w);
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(report.stoppedAt).toBe('copy the snapshot (zstd, sha256)');
    expect(hosts.host('data1').files.size).toBe(0);
    expect(calls('data1').some((c) => c.startsWith('mv '))).toBe(false);
    expect(calls('data1')).toContain('lvremove --yes vg_cluster/kvol-enssib-snap');
    expect(w.snapshot).toBeNull();
    expect(w.exported2 && w.active2).toBe(true);
    expect(calls('data1').at(-1)).toMatch(/enssib-unlock/);
    expect(outcome).toMatchObject({ status: 'failed', record: null });
    expect(outcome.error).toMatch(/copy the snapshot .*No space left|copy the snapshot/);
  });

  it('a snapshot that filled up during the copy fails the backup: nothing kept, the snapshot removed', async () => {
    const w = world({ fillDuringCopy: true });
    const { report, hosts, calls, outcome } = await backup(w);
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(report.stoppedAt).toBe('check the snapshot and keep the copy');
    expect(outcome.error).toMatch(/became invalid: its copy-on-write area filled up/);
    expect(calls('data1').some((c) => c.startsWith('mv '))).toBe(false);
    expect(hosts.host('data1').files.size).toBe(0);
    expect(calls('data1')).toContain('rm -f -- /srv/backup/kvol/kvol.20261203T020000Z.img.zst /srv/backup/kvol/kvol.20261203T020000Z.json');
    expect(w.snapshot).toBeNull();
    expect(w.exported2).toBe(true);
    expect(report.state.values.get(RECORD)).toBeUndefined();
  });

  it('a copy that fails because the snapshot filled up says so', async () => {
    const w = world({ copy: 'fail', fillDuringCopy: true });
    const { report } = await backup(w);
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(report.findings.filter((f) => f.severity === 'warning').map((f) => f.found)).toEqual(['the snapshot kvol-enssib-snap had become invalid: its copy-on-write area (52M) filled up']);
    expect(w.snapshot).toBeNull();
  });

  it('removes the snapshot an earlier run left, before anything else changes', async () => {
    const w = world({ snapshot: { attr: 'swi-a-s---', pct: '12.00', origin: 'kvol' } });
    const { report, calls } = await backup(w);
    expect(report.exitCode).toBe(ExitCode.ok);
    const m = mutations(calls('data1'));
    expect(m[0]).toBe('lvremove --yes vg_cluster/kvol-enssib-snap');
    expect(m.indexOf('lvcreate --yes --snapshot --name kvol-enssib-snap --size 52m vg_cluster/kvol')).toBeGreaterThan(0);
  });

  it('interrupted during the copy: the copy is stopped, the snapshot removed, data2 re-exported, nothing catalogued', async () => {
    const w = world({ copy: 'hang' });
    const ac = new AbortController();
    const running = backup(w, ac.signal);
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    const { report, hosts, outcome } = await running;
    expect(report.exitCode).toBe(ExitCode.interrupted);
    expect(outcome.status).toBe('interrupted');
    expect(w.snapshot).toBeNull();
    expect(w.exported2 && w.active2).toBe(true);
    expect(hosts.host('data1').files.size).toBe(0);
  });

  it('another backup of the volume holds its lock: fails at once and touches neither its snapshot nor data2 nor the workers', async () => {
    const w = world({ locked: true, snapshot: { attr: 'swi-a-s---', pct: '3.00', origin: 'kvol' }, exported2: false, active2: false });
    const { report, calls, outcome } = await backup(w);
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(report.stoppedAt).toBe('take the lock of the volume');
    expect(outcome.status).toBe('failed');
    expect(mutations(calls('data1'))).toEqual([]);
    expect(mutations(calls('data2'))).toEqual([]);
    expect(mutations(calls('node01'))).toEqual([]);
    expect(w.snapshot).not.toBeNull();
  });

  it('refuses, changing nothing: unknown volume, an LV enssib did not make, no room for the snapshot, a foreign LV under the snapshot name', async () => {
    const cases: [Partial<World>, RegExp][] = [
      [{ lv: false }, /no volume "kvol": no LV vg_cluster\/kvol on data1/],
      [{ tags: '' }, /is not a volume enssib made .*enssib backs up only its own volumes/],
      [{ vgFree: 8 * 1024 * 1024 }, /has 8M free; the snapshot of kvol needs 52M/],
      [{ snapshot: { attr: '-wi-a-----', pct: '', origin: '' } }, /an LV vg_cluster\/kvol-enssib-snap exists and is not a snapshot of kvol/],
    ];
    for (const [over, msg] of cases) {
      const w = world(over);
      const { report, calls, outcome } = await backup(w);
      expect(report.exitCode, String(msg)).toBe(ExitCode.failed);
      expect(outcome.error).toMatch(msg);
      expect(mutations(calls('data1')).filter((c) => !c.startsWith('rm -f'))).toEqual([]);
      expect(mutations(calls('data2'))).toEqual([]);
      expect(mutations(calls('node01'))).toEqual([]);
      expect(calls('data1').at(-1)).toMatch(/enssib-unlock/);
    }
  });
});
