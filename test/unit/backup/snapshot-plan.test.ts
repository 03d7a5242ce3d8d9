import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { PHASE_BORG_INIT, PHASE_CHECKSUM, PHASE_COPY, PHASE_COPY_BORG, PHASE_KEEP, PHASE_RELEASE, PHASE_SNAPSHOT, borgCopyArgv, checksumArgv, PHASE_GONE, PHASE_REEXPORT, PHASE_REMOVE, PHASE_RESCAN, RECORD, copyResultArgv, sinkArgv, snapshotOutcome, snapshotPlan, type SnapshotOutcome, type SnapshotRequest } from '../../../src/backup/snapshot.js';
import { snapshotCommand, snapshotSummary } from '../../../src/backup/usecases.js';
import { PHASE_ARM, PHASE_DISARM, PHASE_FREEZE, PHASE_PRE_HOOK, PHASE_THAW, findQuiesce, quiescePhases, thawTimerArgv } from '../../../src/backup/quiesce.js';
import type { HookRun } from '../../../src/remote/hook.js';
import { createContext } from '../../../src/context.js';
import { fileInventory } from '../../../src/inventory/load.js';
import { createOutput } from '../../../src/ui/output.js';
import { createPrompter } from '../../../src/ui/prompt.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';
import { atDestination, type BackupSite } from '../../../src/backup/site.js';
import type { RunEvent, RunObserver } from '../../../src/engine/events.js';
import { runPlan } from '../../../src/engine/runner.js';
import { ExitCode } from '../../../src/errors.js';
import { lockOwner } from '../../../src/storage/lock.js';
import { writeRecordArgv } from '../../../src/backup/catalogue.js';
import { borgArgv, initArgv } from '../../../src/backup/borg.js';
import { quote } from '../../../src/remote/quote.js';
import type { VolumeSite } from '../../../src/storage/volume.js';
import { fakePool, type FakeHost } from '../../support/fake-hosts.js';
import { testVolumeSite } from '../../support/volume-site.js';

const fx = (f: string) => readFileSync(join(import.meta.dirname, '../storage/fixtures', f), 'utf8');
const ok = (stdout = '') => ({ exitCode: 0, stdout, stderr: '', durationMs: 1 });

const site: VolumeSite = testVolumeSite({ driver: 'lio', lockFile: '/run/enssib/storage.lock' });
const bsite: BackupSite = { destination: '/srv/backup', remote: null, snapshotSize: { percent: 20 }, retention: { daily: 7 }, maxSinglePathMs: 7_200_000 };
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
  /** lvremove of the snapshot fails (the device is held open). */
  lvremoveFails?: boolean;
  /** borg create's outcome (the borg method). */
  borgCreate?: 'ok' | 'fail';
  /** The checksum of the copy never ends (a slow backup host). */
  checksumHangs?: boolean;
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
      if (w.lvremoveFails) return { exitCode: 5, stdout: '', stderr: '  Logical volume vg_cluster/kvol-enssib-snap in use.', durationMs: 1 };
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
      // The copy prints how far it got (bytes of the snapshot read), a line a second.
      return ok('0\n134217728\n268435456\n');
    }
    if (w.checksumHangs && (name === 'enssib-backup-checksum' || (name === 'enssib-backup-host' && /enssib-backup-checksum/.test(argv.at(-1) ?? '')))) return new Promise<undefined>(() => undefined);
    if (name === 'enssib-borg-create') {
      if (w.fillDuringCopy && w.snapshot) w.snapshot = { ...w.snapshot, attr: 'Swi-I-s---', pct: '100.00' };
      if (w.borgCreate === 'fail') return { exitCode: 2, stdout: '', stderr: 'Repository /srv/backup/borg does not exist.', durationMs: 1 };
      // How far borg read the snapshot, then its --json answer (pretty-printed, as borg prints it).
      return ok(`0\n134217728\n268435456\n${JSON.stringify({ archive: { name: req.id, start: '2026-12-03T02:00:01.000000', duration: 1.5, stats: { original_size: 268435456, compressed_size: 200000000, deduplicated_size: 1048576, nfiles: 1 } } }, null, 4)}\n`);
    }
    if (name === 'enssib-backup-result' || (name === 'enssib-backup-host' && /enssib-backup-result/.test(argv.at(-1) ?? ''))) return ok(`${SHA}  -\n1764727200000 1764727201500\n1234\n`);
    if (line === 'blockdev --getsize64 /dev/vg_cluster/kvol-enssib-snap') return ok('268435456\n');
    if (line === 'iscsiadm -m session -P 3') return host === 'node01' ? ok(fx('iscsiadm-session-P3.txt').replaceAll('smoke', 'kvol')) : { exitCode: 21, stdout: '', stderr: 'iscsiadm: No active sessions.', durationMs: 1 };
    if (line === 'multipath -ll') return ok(host === 'node01' ? fx('multipath-ll-kernel.txt') : '');
    return ok();
  };
}

async function backup(w: World, signal?: AbortSignal, observer?: RunObserver, where: BackupSite = bsite) {
  const hosts = fakePool(responder(w));
  const report = await runPlan(snapshotPlan(site, where, [req], lockOwner(['enssib', 'backup'], new Date(0), 'tok'), 1), { mode: 'apply', concurrency: 4, hosts, ...(signal ? { signal } : {}), ...(observer ? { observer } : {}) });
  const calls = (h: string) => hosts.host(h).calls.map((c) => (c[0] === 'sh' || c[0] === 'bash' ? `${c[0]} ${c[3]} ${c.slice(4).join(' ')}` : c.join(' ')));
  return { report, hosts, calls, outcome: snapshotOutcome(req, report) };
}

/** The catalogue record the run wrote (the stdin of enssib-backup-record), if any. */
const recordWritten = (h: FakeHost) => h.inputs[h.calls.findIndex((c) => c[3] === 'enssib-backup-record' || (c[3] === 'enssib-backup-host' && / enssib-backup-record /.test(c.at(-1) ?? '')))];
const SINK = sinkArgv('x')[2] as string;

const mutations = (calls: string[]) => calls.filter((c) => /^(lvcreate|lvremove|lvchange|targetcli|mv|rm|find|mkdir|iscsiadm -m node|sync)|enssib-backup-copy|enssib-backup-checksum|enssib-backup-record|undo-export/.test(c));

describe('backup snapshot, one volume, with fake hosts', () => {
  it('takes data2 offline, snapshots, copies, keeps the copy with its record, and puts everything back', async () => {
    const w = world();
    const { report, hosts, calls, outcome } = await backup(w);
    expect(report.exitCode, JSON.stringify(report.phases.flatMap((p) => p.hosts.filter((h) => h.error)), null, 1)).toBe(ExitCode.ok);
    expect(mutations(calls('data1'))).toEqual([
      'find /srv/backup/kvol -maxdepth 1 -name .*.partial* -delete',
      'mkdir -p -m 0700 -- /srv/backup/kvol',
      'lvcreate --yes --snapshot --name kvol-enssib-snap --size 52m vg_cluster/kvol',
      `bash enssib-backup-copy /dev/vg_cluster/kvol-enssib-snap bash -c ${SINK} enssib-backup-sink /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial`,
      // The snapshot goes as soon as the copy is complete and it is found valid: the checksum is taken after, from the file.
      'lvremove --yes vg_cluster/kvol-enssib-snap',
      'sh enssib-backup-checksum /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial',
      'mv -T -- /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial /srv/backup/kvol/kvol.20261203T020000Z.img.zst',
      'sh enssib-backup-record /srv/backup/kvol/kvol.20261203T020000Z.json',
      'sync -- /srv/backup/kvol',
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
    const record = JSON.parse(recordWritten(hosts.host('data1')) ?? '{}');
    expect(record).toEqual({ format: 1, id: req.id, volume: 'kvol', method: 'image', time: '2025-12-03T02:00:00.000Z', sizeBytes: 268435456, compressedBytes: 1234, sha256: SHA, durationMs: 1500, snapshotFillPercent: 0, file: 'kvol.20261203T020000Z.img.zst', tool: 'enssib 0.1.0' });
    expect(outcome).toMatchObject({ status: 'ok', pathsOk: true, error: null });
    expect(outcome.singlePathMs).not.toBeNull();
    // The snapshot's life ends with its removal after the copy, before the checksum and the keeping.
    const at = (t: string) => report.phases.findIndex((p) => p.title === t);
    expect(at(PHASE_RELEASE)).toBeGreaterThan(at(PHASE_COPY));
    expect(at(PHASE_RELEASE)).toBeLessThan(at(PHASE_KEEP));
    const ms = (t: string) => Math.max(0, ...(report.phases.find((p) => p.title === t)?.hosts.map((h) => h.durationMs) ?? []));
    expect(outcome.snapshotLifetimeMs).toBe(report.phases.slice(at(PHASE_SNAPSHOT), at(PHASE_RELEASE) + 1).reduce((sum, p) => sum + ms(p.title), 0));
    expect(report.findings.filter((f) => f.severity === 'info').map((f) => f.found)).toEqual(['kvol: map 36001405e0b96a6492d74e4c8a4876db0 with 2 active paths']);
  });

  it('a destination on a backup host: the copy streams from data1 into ssh, every file command runs over ssh there, the record is sent on stdin', async () => {
    const w = world();
    const remote: BackupSite = { ...bsite, destination: '/srv/enssib', remote: { user: 'backup', host: 'backup1', port: 2222 } };
    const { report, hosts, outcome } = await backup(w, undefined, undefined, remote);
    expect(report.exitCode, JSON.stringify(report.phases.flatMap((p) => p.hosts.filter((h) => h.error)), null, 1)).toBe(ExitCode.ok);
    const data1 = hosts.host('data1').calls;
    const ssh = ['-n', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', 'ConnectTimeout=20', '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4', '-p', '2222', '--', 'backup@backup1'];
    const partial = '/srv/enssib/kvol/.kvol.20261203T020000Z.img.zst.partial';
    const viaSsh = (c: string[]) => c[3] === 'enssib-backup-host';
    const overSsh = data1.filter(viaSsh).map((c) => {
      expect(c.slice(0, 3)).toEqual(['sh', '-c', atDestination({ remote: { user: 'x', host: 'y', port: null } }, ['true'])[2]]);
      expect(c.slice(4, -1)).toEqual(c[4] === '-n' ? ssh : ssh.filter((a) => a !== '-n'));
      return c.at(-1);
    });
    expect(overSsh).toEqual([
      'find /srv/enssib/kvol -maxdepth 1 -name \'.*.partial*\' -delete',
      'mkdir -p -m 0700 -- /srv/enssib/kvol',
      quote(checksumArgv(partial)),
      quote(copyResultArgv(partial)),
      `mv -T -- ${partial} /srv/enssib/kvol/kvol.20261203T020000Z.img.zst`,
      quote(['sh', '-c', writeRecordArgv('x')[2] as string, 'enssib-backup-record', '/srv/enssib/kvol/kvol.20261203T020000Z.json']),
      'sync -- /srv/enssib/kvol',
      `rm -f -- ${partial} ${partial}.sha256 ${partial}.time`,
    ]);
    // Only the record's write and the copy's sink read stdin: those two have no -n.
    expect(data1.filter((c) => viaSsh(c) && c[4] !== '-n').map((c) => c.at(-1))).toEqual([quote(['sh', '-c', writeRecordArgv('x')[2] as string, 'enssib-backup-record', '/srv/enssib/kvol/kvol.20261203T020000Z.json'])]);
    const copy = data1.find((c) => c[3] === 'enssib-backup-copy');
    expect(copy?.slice(4)).toEqual(['/dev/vg_cluster/kvol-enssib-snap', 'sh', '-c', copy?.[7], 'enssib-backup-host', ...ssh.filter((a) => a !== '-n'), quote(sinkArgv(partial))]);
    // The snapshot's size is read on data1 (the device is there), the copy's result on the backup host.
    expect(data1.map((c) => c.join(' '))).toContain('blockdev --getsize64 /dev/vg_cluster/kvol-enssib-snap');
    expect(JSON.parse(recordWritten(hosts.host('data1')) ?? '{}')).toMatchObject({ id: req.id, sizeBytes: 268435456, compressedBytes: 1234, sha256: SHA });
    expect(outcome).toMatchObject({ status: 'ok', pathsOk: true });
  });

  it('a copy that fails is not catalogued, and the snapshot, data2 and the lock are still put back', async () => {
    const w = world({ copy: 'fail' });
    const { report, hosts, calls, outcome } = await backup(w);
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(report.items?.[0]?.stoppedAt).toBe('copy the snapshot (zstd)');
    expect(recordWritten(hosts.host('data1'))).toBeUndefined();
    expect(calls('data1').some((c) => c.startsWith('mv '))).toBe(false);
    expect(calls('data1')).toContain('lvremove --yes vg_cluster/kvol-enssib-snap');
    expect(w.snapshot).toBeNull();
    expect(w.exported2 && w.active2).toBe(true);
    expect(calls('data1').at(-1)).toMatch(/enssib-unlock/);
    expect(outcome).toMatchObject({ status: 'failed', record: null });
    // The cause is in the outcome's one line: the last line the copy wrote on stderr.
    expect(outcome.error).toBe('copy the snapshot (zstd): data1: command failed with exit code 1: zstd: error 70 : Write error : No space left on device');
  });

  it('a snapshot that filled up during the copy fails the backup: nothing kept, the snapshot removed', async () => {
    const w = world({ fillDuringCopy: true });
    const { report, hosts, calls, outcome } = await backup(w);
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(report.items?.[0]?.stoppedAt).toBe(PHASE_RELEASE);
    expect(outcome.error).toMatch(/became invalid: its copy-on-write area filled up/);
    expect(calls('data1').some((c) => c.startsWith('mv ') || /enssib-backup-checksum/.test(c))).toBe(false);
    expect(recordWritten(hosts.host('data1'))).toBeUndefined();
    // The partial copy and the snapshot go in the cleanup.
    expect(calls('data1')).toContain('rm -f -- /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial.sha256 /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial.time');
    expect(w.snapshot).toBeNull();
    expect(w.exported2).toBe(true);
    expect(report.itemStates?.get('kvol')?.values.get(RECORD)).toBeUndefined();
  });

  it('a copy that fails because the snapshot filled up says so', async () => {
    const w = world({ copy: 'fail', fillDuringCopy: true });
    const { report, outcome } = await backup(w);
    expect(report.exitCode).toBe(ExitCode.failed);
    // The outcome names the cause (the snapshot), not the read error the copy met.
    expect(outcome.error).toBe('copy the snapshot (zstd): data1: the snapshot kvol-enssib-snap had become invalid: its copy-on-write area (52M) filled up');
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
    expect(recordWritten(hosts.host('data1'))).toBeUndefined();
  });

  it('interrupted during the checksum: the snapshot is already gone; the partial copy and its checksum are removed, data2 re-exported, nothing catalogued', async () => {
    const w = world({ checksumHangs: true });
    const ac = new AbortController();
    const running = backup(w, ac.signal);
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    const { report, hosts, calls, outcome } = await running;
    expect(report.exitCode).toBe(ExitCode.interrupted);
    expect(outcome.status).toBe('interrupted');
    expect(report.items?.[0]?.stoppedAt).toBe(PHASE_CHECKSUM);
    expect(calls('data1').filter((c) => c.startsWith('lvremove'))).toEqual(['lvremove --yes vg_cluster/kvol-enssib-snap']);
    expect(calls('data1')).toContain('rm -f -- /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial.sha256 /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial.time');
    expect(calls('data1').some((c) => c.startsWith('mv '))).toBe(false);
    expect(w.snapshot).toBeNull();
    expect(w.exported2 && w.active2).toBe(true);
    expect(recordWritten(hosts.host('data1'))).toBeUndefined();
    expect(calls('data1').at(-1)).toMatch(/enssib-unlock/);
  });

  it('another backup of the volume holds its lock: fails at once and touches neither its snapshot nor data2 nor the workers', async () => {
    const w = world({ locked: true, snapshot: { attr: 'swi-a-s---', pct: '3.00', origin: 'kvol' }, exported2: false, active2: false });
    const { report, calls, outcome } = await backup(w);
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(report.items?.[0]?.stoppedAt).toBe('take the lock of the volume');
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

  it('the copy reports how far it got: progress events with the bytes read of the volume\u2019s size', async () => {
    const events: RunEvent[] = [];
    const { report } = await backup(world(), undefined, { event: (e) => events.push(e) });
    expect(report.exitCode).toBe(ExitCode.ok);
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress).toEqual([0, 134217728, 268435456].map((done) => ({ type: 'progress', phase: PHASE_COPY, host: 'data1', item: 'kvol', done, total: 268435456 })));
  });

  it('the snapshot cannot be removed: data2 stays offline and inactive, the workers are not rescanned, the report says what is left and how to finish', async () => {
    const w = world({ lvremoveFails: true });
    const { report, calls, outcome } = await backup(w);
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(w.snapshot).not.toBeNull();
    // The hazard: no reactivation nor re-export on data2 while the snapshot exists.
    expect(w.active2).toBe(false);
    expect(w.exported2).toBe(false);
    expect(calls('data2').filter((c) => c.startsWith('lvchange --activate y') || c.startsWith('targetcli /iscsi create'))).toEqual([]);
    expect(mutations(calls('node01'))).toEqual([]);
    // The lock is released: the next run removes the leftover snapshot first and puts the export back.
    expect(calls('data1').at(-1)).toMatch(/enssib-unlock/);
    const byTitle = (t: string) => report.phases.find((p) => p.title === t);
    expect(byTitle(PHASE_REMOVE)?.hosts[0]?.status).toBe('failed');
    expect(byTitle(PHASE_GONE)?.hosts[0]?.error?.message).toBe('data1: the snapshot vg_cluster/kvol-enssib-snap is still there');
    const err = byTitle(PHASE_REEXPORT)?.hosts[0]?.error;
    expect(err?.message).toBe('not reactivated nor re-exported on data2: the snapshot vg_cluster/kvol-enssib-snap may still exist on data1 (its removal failed or could not be checked), and writes through that server would bypass it');
    expect(err?.details[0]).toBe('Left: on data1 the snapshot vg_cluster/kvol-enssib-snap; on data2 the LV vg_cluster/kvol inactive and its export offline; node01 reaches kvol through data1 only.');
    expect(err?.details[1]).toBe('To finish by hand, in this order: on data1: lvremove --yes vg_cluster/kvol-enssib-snap, then check that lvs vg_cluster/kvol-enssib-snap finds nothing;');
    expect(err?.details).toContain('then on data2: lvchange --activate y vg_cluster/kvol');
    expect(err?.details).toContain('  targetcli /iscsi create iqn.2016-04.fr.enssib:kvol');
    expect(err?.details.at(-2)).toBe('then on node01: iscsiadm -m node -T iqn.2016-04.fr.enssib:kvol -p 10.66.6.2:3260 --login; iscsiadm -m node -T iqn.2016-04.fr.enssib:kvol -p 10.66.6.2:3260 --rescan; multipath -ll');
    expect(byTitle(PHASE_RESCAN)?.hosts.find((h) => h.host === 'node01')?.error?.message).toMatch(/^node01: not rescanned: kvol stays on one path/);
    expect(outcome).toMatchObject({ status: 'failed', stranded: true, pathsOk: false, singlePathMs: null, record: null });
    expect(snapshotSummary([outcome], bsite).line).toBe('backup snapshot: 0 of 1 volume backed up; failed: kvol (its snapshot could not be removed: ONE PATH left)');
  });

  it('the check after the removal cannot read the snapshots: unknown is unsafe, data2 stays offline', async () => {
    const w = world();
    let removed = false;
    const base = responder(w);
    const hosts = fakePool((host, argv) => {
      if (argv[0] === 'lvremove') removed = true;
      if (removed && host === 'data1' && argv[0] === 'lvs') return { exitCode: 5, stdout: '', stderr: '  read failed', durationMs: 1 };
      return base(host, argv);
    });
    const report = await runPlan(snapshotPlan(site, bsite, [req], lockOwner(['enssib', 'backup'], new Date(0), 'tok'), 1), { mode: 'apply', concurrency: 4, hosts });
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(w.active2 || w.exported2).toBe(false);
    expect(snapshotOutcome(req, report).stranded).toBe(true);
  });
});

describe('backup snapshot, several volumes on the per-item runner', () => {
  const two: SnapshotRequest[] = [req, { ...req, volume: 'gone', id: 'gone.20261203T020000Z' }];

  it('a volume that fails does not stop the other: each has its own cleanup, the run is a partial failure (exit 3)', async () => {
    const w = world();
    const hosts = fakePool(responder(w));
    const report = await runPlan(snapshotPlan(site, bsite, two, lockOwner(['enssib', 'backup'], new Date(0), 'tok'), 1), { mode: 'apply', concurrency: 4, hosts });
    expect(report.exitCode).toBe(ExitCode.partial);
    expect(report.items?.map((i) => [i.item, i.status])).toEqual([
      ['kvol', 'done'],
      ['gone', 'failed'],
    ]);
    const outcomes = two.map((r) => snapshotOutcome(r, report));
    expect(outcomes.map((o) => o.status)).toEqual(['ok', 'failed']);
    expect(outcomes[1]?.error).toMatch(/no volume "gone"/);
    expect(outcomes[0]?.snapshotLifetimeMs).not.toBeNull();
    expect(outcomes[1]?.snapshotLifetimeMs).toBeNull();
    // Both volumes' locks were released by their own cleanup.
    const unlocks = hosts.host('data1').calls.filter((c) => c[3] === 'enssib-unlock').map((c) => c[4]);
    expect(unlocks).toEqual(['/run/enssib/volume-kvol.lock', '/run/enssib/volume-gone.lock']);
    const v = snapshotSummary(outcomes, bsite);
    expect(v.exitCode).toBe(ExitCode.partial);
    expect(v.line).toBe('backup snapshot: 1 of 2 volumes backed up; failed: gone (failed)');
  });

  it('interrupted during the first volume: its cleanup runs, the second never starts', async () => {
    const w = world({ copy: 'hang' });
    const ac = new AbortController();
    const hosts = fakePool(responder(w));
    const running = runPlan(snapshotPlan(site, bsite, two, lockOwner(['enssib', 'backup'], new Date(0), 'tok'), 1), { mode: 'apply', concurrency: 4, hosts, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    const report = await running;
    expect(report.exitCode).toBe(ExitCode.interrupted);
    expect(two.map((r) => snapshotOutcome(r, report).status)).toEqual(['interrupted', 'skipped']);
    expect(w.snapshot).toBeNull();
    expect(w.exported2 && w.active2).toBe(true);
    expect(hosts.host('data1').calls.some((c) => c.includes('/run/enssib/volume-gone.lock'))).toBe(false);
  });

  it('--concurrency: items at once in the plan; two copies run side by side', async () => {
    const plan = snapshotPlan(site, bsite, two, lockOwner(['enssib', 'backup'], new Date(0), 'tok'), 2);
    expect(plan.items?.concurrency).toBe(2);
    expect(plan.items?.items.map((i) => i.name)).toEqual(['kvol', 'gone']);
    expect(plan.phases).toEqual([]);
  });
});

describe('the summary of a backup run', () => {
  const o = (over: Partial<SnapshotOutcome>): SnapshotOutcome => ({ volume: 'v', id: 'v.20261203T020000Z', status: 'ok', record: null, error: null, snapshotLifetimeMs: 1000, singlePathMs: 2000, stranded: false, pathsOk: true, ...over });

  it('every volume backed up: exit 0; all failed: exit 1; some: exit 3', () => {
    expect(snapshotSummary([o({}), o({ volume: 'w' })], bsite)).toMatchObject({ exitCode: ExitCode.ok, line: 'backup snapshot: 2 of 2 volumes backed up', warnings: [] });
    expect(snapshotSummary([o({ status: 'failed' })], bsite).exitCode).toBe(ExitCode.failed);
    expect(snapshotSummary([o({}), o({ volume: 'w', pathsOk: false })], bsite)).toMatchObject({ exitCode: ExitCode.partial, line: 'backup snapshot: 1 of 2 volumes backed up; failed: w (backed up, but a worker does not have both paths again)' });
  });

  it('says which volume ran on one path longer than backup.maxSinglePath', () => {
    const v = snapshotSummary([o({ singlePathMs: 7_200_000 }), o({ volume: 'big', singlePathMs: 7_200_001 + 180_000 })], bsite);
    expect(v.long).toEqual(['big']);
    expect(v.line).toBe('backup snapshot: 2 of 2 volumes backed up; on one path longer than 2h 00m: big');
    expect(v.warnings).toEqual(['warning: big ran on one path for 2h 03m, longer than backup.maxSinglePath (2h 00m): a failure of the server left in that time stops its I/O. Back it up at a quieter time, or raise backup.maxSinglePath.']);
    expect(v.exitCode).toBe(ExitCode.ok);
  });
});

describe('enssib backup snapshot, the use case: exit code, summary table, one-line summary in the output and the journal', () => {
  async function command(volumes: string[], w: World) {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-backup-uc-'));
    const inventory = join(dir, 'inventory.yaml');
    writeFileSync(inventory, `${VALID_INVENTORY.replace('targetDriver: scst', 'targetDriver: lio\n  lockFile: /run/enssib/storage.lock')}backup:\n  destination: /srv/backup\n  maxSinglePath: 1s\n  retention: { daily: 7 }\n`);
    const stdout = new PassThrough();
    let text = '';
    stdout.on('data', (b: Buffer) => (text += b.toString()));
    const hosts = fakePool(responder(w));
    const ctx = createContext({
      opts: { inventory, dryRun: false, yes: false, output: 'text', concurrency: 10, color: false, verbose: false },
      out: createOutput({ format: 'text', color: false, verbose: false, stdout, stderr: new PassThrough() }),
      prompt: createPrompter({ yes: false, isTTY: false }),
      env: { HOME: dir },
      cwd: dir,
      renderer: 'silent',
      inventory: fileInventory(inventory, { HOME: dir }),
      hosts: () => hosts,
    });
    const code = await snapshotCommand(ctx, { args: [volumes], opts: {} });
    const journal = readFileSync(join(dir, 'journal.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { summary?: string; exitCode: number; items?: { item: string; status: string }[] });
    return { code, lines: text.trimEnd().split('\n'), journal };
  }

  it('two volumes, one unknown: exit 3 (partial), a table row per volume, the summary line last and in the journal', async () => {
    const { code, lines, journal } = await command(['kvol', 'gone'], world());
    expect(code).toBe(ExitCode.partial);
    const head = lines.findIndex((l) => l.startsWith('VOLUME'));
    expect(lines[head]?.split(/\s{2,}/)).toEqual(['VOLUME', 'RESULT', 'BACKUP', 'SIZE', 'COMPRESSED', 'ADDED', 'COPY', 'SNAPSHOT USED', 'SNAPSHOT LIFETIME', 'ONE PATH FOR']);
    expect(lines[head + 1]).toMatch(/^kvol\s+ok\s+kvol\.\d{8}T\d{6}Z\s+256M\s+1\.21K\s+1\.21K\s+2 s\s+0\.0%\s+\d+ s\s+\d+ s$/);
    expect(lines[head + 2]).toMatch(/^gone\s+FAILED\s+-\s+-\s+-\s+-\s+-\s+-\s+-\s+-$/);
    expect(lines.at(-1)).toBe('backup snapshot: 1 of 2 volumes backed up; failed: gone (failed)');
    expect(journal).toHaveLength(1);
    expect(journal[0]).toMatchObject({ exitCode: ExitCode.partial, summary: 'backup snapshot: 1 of 2 volumes backed up; failed: gone (failed)', items: [{ item: 'kvol', status: 'done' }, { item: 'gone', status: 'failed' }] });
  });

  it('every volume failed: exit 1, the table says why, the journal says so in one line', async () => {
    const { code, lines, journal } = await command(['kvol'], world({ copy: 'fail' }));
    expect(code).toBe(ExitCode.failed);
    expect(lines).toContain('kvol: copy the snapshot (zstd): data1: command failed with exit code 1: zstd: error 70 : Write error : No space left on device');
    expect(lines.at(-1)).toBe('backup snapshot: 0 of 1 volume backed up; failed: kvol (failed)');
    expect(journal[0]).toMatchObject({ exitCode: ExitCode.failed, summary: 'backup snapshot: 0 of 1 volume backed up; failed: kvol (failed)' });
  });
});

describe('backup snapshot with quiesce: hooks and a filesystem freeze with a thaw timer on the worker', () => {
  const MP = '/var/lib/kubelet/plugins/kubernetes.io/iscsi/iface-default/10.66.6.1:3260-iqn.2016-04.fr.enssib:kvol-lun-0';
  const svc = { service: 'mail', dir: '/site/services/mail', namespace: 'default', pre: '/site/services/mail/hooks/pre-snapshot.mjs', post: '/site/services/mail/hooks/post-snapshot.mjs' };

  interface Q {
    preFails?: boolean;
    /** The filesystem was thawed (by its timer) before enssib's thaw. */
    thawedEarly?: boolean;
    /** Interrupt the run right after the freeze (before the snapshot). */
    interruptAfterFreeze?: boolean;
    /** The pre hook hangs; the run is interrupted twice while it runs. */
    preHangs?: boolean;
  }

  /** One ordered log over the hosts and the local hooks. */
  async function quiesced(w: World, q: Q = {}) {
    const log: string[] = [];
    let armed = false;
    const ac = new AbortController();
    const cancel = new AbortController();
    const base = responder(w);
    const hosts = fakePool((host, argv) => {
      const line = argv[0] === 'sh' || argv[0] === 'bash' ? `${argv[0]} ${argv[3]} ${argv.slice(4).join(' ')}` : argv.join(' ');
      if (/^(sync -f|fsfreeze|lvcreate|lvremove|sh enssib-arm|sh enssib-disarm|bash enssib-backup-copy|targetcli \/iscsi delete)/.test(line)) log.push(`${host}: ${line.replace(MP, 'MP').replace(/enssib-arm .*/, 'enssib-arm')}`);
      // The timer's flag file on the worker: made by the arm, removed by the disarm (exit 3 when already gone).
      if (argv[3] === 'enssib-arm') armed = true;
      if (argv[3] === 'enssib-disarm') {
        const was = armed;
        armed = false;
        return was ? ok() : { exitCode: 3, stdout: '', stderr: '', durationMs: 1 };
      }
      if (argv[0] === 'test' && argv[1] === '-e') return { exitCode: armed ? 0 : 1, stdout: '', stderr: '', durationMs: 1 };
      if (argv[0] === 'findmnt') return ok(host === 'node01' ? `/dev/mapper/36001405e0b96a6492d74e4c8a4876db0 ${MP} ext4\n/dev/sda1 / ext4\n` : '/dev/sda1 / ext4\n');
      if (argv[0] === 'fsfreeze' && argv[1] === '-f' && q.interruptAfterFreeze) ac.abort();
      if (argv[0] === 'fsfreeze' && argv[1] === '-u' && q.thawedEarly) return { exitCode: 1, stdout: '', stderr: `fsfreeze: ${MP}: thaw failed: Invalid argument`, durationMs: 1 };
      return base(host, argv);
    });
    const run: HookRun = async (r) => {
      log.push(`local: ${r.env.ENSSIB_HOOK} ${r.env.ENSSIB_SERVICE} ${r.env.ENSSIB_VOLUME}`);
      if (r.env.ENSSIB_HOOK === 'pre-snapshot' && q.preHangs) {
        // Ctrl-C twice while the hook runs: the second reaches the hook as its signal (runHook then stops its process group)
        ac.abort();
        cancel.abort();
        if (!r.signal?.aborted) await new Promise((resolve) => r.signal?.addEventListener('abort', resolve, { once: true }) ?? setTimeout(resolve, 60_000));
        return { exitCode: 143, timedOut: false, cancelled: r.signal?.aborted === true, output: ['flushing…'] };
      }
      return r.env.ENSSIB_HOOK === 'pre-snapshot' && q.preFails ? { exitCode: 2, timedOut: false, cancelled: false, output: ['flush: connection refused'] } : { exitCode: 0, timedOut: false, cancelled: false, output: ['flushed'] };
    };
    const qreq: SnapshotRequest = { ...req, quiesce: quiescePhases(site, 'kvol', { services: [svc], freezeSeconds: 30 }, { inventory: '/site/inventory.yaml', kubeconfig: null, backupId: req.id, run }) };
    const report = await runPlan(snapshotPlan(site, bsite, [qreq], lockOwner(['enssib', 'backup'], new Date(0), 'tok'), 1), { mode: 'apply', concurrency: 4, hosts, signal: ac.signal, cancel: cancel.signal });
    return { report, log, hosts, outcome: snapshotOutcome(qreq, report) };
  }

  it('pre hook → flush → arm the timer → freeze → snapshot → thaw → disarm → post hook → copy, on the worker that mounts the volume only', async () => {
    const w = world();
    const { report, log, hosts } = await quiesced(w);
    expect(report.exitCode, JSON.stringify(report.phases.flatMap((p) => p.hosts.filter((h) => h.error)), null, 1)).toBe(ExitCode.ok);
    expect(log.filter((l) => !/^data2/.test(l))).toEqual([
      'local: pre-snapshot mail kvol',
      'node01: sync -f -- MP',
      'node01: sh enssib-arm',
      'node01: fsfreeze -f -- MP',
      'data1: lvcreate --yes --snapshot --name kvol-enssib-snap --size 52m vg_cluster/kvol',
      'node01: fsfreeze -u -- MP',
      'node01: sh enssib-disarm /run/enssib-rollback.thaw-kvol',
      'local: post-snapshot mail kvol',
      `data1: bash enssib-backup-copy /dev/vg_cluster/kvol-enssib-snap bash -c ${SINK} enssib-backup-sink /srv/backup/kvol/.kvol.20261203T020000Z.img.zst.partial`,
      'data1: lvremove --yes vg_cluster/kvol-enssib-snap',
    ]);
    // The timer: armed on node01 for 30 s, thawing that mount point; node02 (volume not mounted) is never frozen.
    const arm = hosts.host('node01').calls.find((c) => c[3] === 'enssib-arm') ?? [];
    expect(arm.slice(5)).toEqual(['/run/enssib-rollback.thaw-kvol', '30', 'sh', '-c', expect.stringContaining('fsfreeze -u "$1"'), 'enssib-thaw', MP]);
    expect(hosts.host('node02').calls.some((c) => c[0] === 'fsfreeze' || c[3] === 'enssib-arm')).toBe(false);
    // Nothing was still armed at the end (the always phase read the flag file and left it alone).
    expect(hosts.host('node01').calls.filter((c) => c[0] === 'fsfreeze' && c[1] === '-u')).toHaveLength(1);
  });

  it('a failing pre hook fails the volume before any snapshot or freeze; its post hook still runs; data2 is put back', async () => {
    const w = world();
    const { report, log, outcome } = await quiesced(w, { preFails: true });
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(report.items?.[0]?.stoppedAt).toBe(PHASE_PRE_HOOK);
    expect(outcome.error).toMatch(/mail: the pre-snapshot hook failed \(exit code 2\): \/site\/services\/mail\/hooks\/pre-snapshot\.mjs/);
    expect(log.some((l) => /lvcreate|fsfreeze|enssib-arm/.test(l))).toBe(false);
    expect(log.filter((l) => l.startsWith('local'))).toEqual(['local: pre-snapshot mail kvol', 'local: post-snapshot mail kvol']);
    expect(w.exported2 && w.active2).toBe(true);
  });

  it('interrupted between the freeze and the snapshot: no snapshot, the filesystem thawed and the timer disarmed, the post hook run', async () => {
    const w = world();
    const { report, log, hosts } = await quiesced(w, { interruptAfterFreeze: true });
    expect(report.exitCode).toBe(ExitCode.interrupted);
    expect(log.some((l) => l.includes('lvcreate'))).toBe(false);
    const after = log.slice(log.indexOf('node01: fsfreeze -f -- MP') + 1);
    expect(after.filter((l) => l.startsWith('node01') || l.startsWith('local'))).toEqual(['node01: fsfreeze -u -- MP', 'node01: sh enssib-disarm /run/enssib-rollback.thaw-kvol', 'local: post-snapshot mail kvol']);
    expect(hosts.host('node01').calls.some((c) => c.join(' ') === 'test -e /run/enssib-rollback.thaw-kvol')).toBe(true);
    expect(w.exported2 && w.active2).toBe(true);
  });

  it('a pre hook that hangs is stopped by a second interruption: exit 130, no freeze, no snapshot, data2 put back', async () => {
    const w = world();
    const { report, log, outcome } = await quiesced(w, { preHangs: true });
    expect(report.exitCode).toBe(ExitCode.interrupted);
    expect(outcome.error).toMatch(/mail: the pre-snapshot hook was stopped \(interrupted twice\)/);
    expect(log.some((l) => /lvcreate|fsfreeze|enssib-arm/.test(l))).toBe(false);
    expect(w.snapshot).toBeNull();
    expect(w.exported2 && w.active2).toBe(true);
  });

  it('a filesystem its timer had already thawed fails the backup (not quiesced): the snapshot is removed, nothing kept', async () => {
    const w = world();
    const { report, outcome, hosts } = await quiesced(w, { thawedEarly: true });
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(report.items?.[0]?.stoppedAt).toBe(PHASE_THAW);
    expect(outcome.error).toMatch(/was no longer frozen when the snapshot was made/);
    expect(w.snapshot).toBeNull();
    expect(hosts.host('data1').files.size).toBe(0);
  });

  it('a client dry run lists the hooks, the timer, the freeze and the thaw', async () => {
    const qreq: SnapshotRequest = { ...req, quiesce: quiescePhases(site, 'kvol', { services: [svc], freezeSeconds: 30 }, { inventory: '/site/inventory.yaml', kubeconfig: '/site/kubeconfig', backupId: req.id, run: () => Promise.reject(new Error('not in a dry run')) }) };
    const report = await runPlan(snapshotPlan(site, bsite, [qreq], lockOwner(['enssib', 'backup'], new Date(0), 'tok'), 1), { mode: 'client', concurrency: 4, hosts: fakePool() });
    const titles = report.phases.map((p) => p.title);
    for (const t of [PHASE_PRE_HOOK, PHASE_ARM, PHASE_FREEZE, PHASE_THAW, PHASE_DISARM]) expect(titles).toContain(t);
    expect(titles.indexOf(PHASE_FREEZE)).toBeLessThan(titles.indexOf('create the snapshot'));
    expect(titles.indexOf(PHASE_THAW)).toBeGreaterThan(titles.indexOf('create the snapshot'));
    const pre = report.phases.find((p) => p.title === PHASE_PRE_HOOK)?.hosts[0]?.actions.join('\n') ?? '';
    expect(pre).toMatch(/KUBECONFIG=\/site\/kubeconfig/);
  });

  it('without hooks or freeze, the plan is unchanged', () => {
    expect(quiescePhases(site, 'kvol', undefined, { inventory: '/i', kubeconfig: null, backupId: 'x', run: () => Promise.reject(new Error('no')) })).toEqual({ read: [], before: [], after: [], always: [] });
  });
});

describe('findQuiesce: which services quiesce which volume', () => {
  it('maps a volume to the services whose YAML names its IQN; reads only the folders that declare a hook or a freeze', () => {
    const root = mkdtempSync(join(tmpdir(), 'enssib-quiesce-'));
    const dep = (name: string, vol: string, ns = '') => `apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: ${name}${ns ? `, namespace: ${ns}` : ''} }\nspec:\n  selector: { matchLabels: { name: ${name} } }\n  template:\n    metadata: { labels: { name: ${name} } }\n    spec:\n      containers: [{ name: ${name}, image: ${name} }]\n      volumes:\n        - name: data\n          iscsi: { targetPortal: 10.66.6.1:3260, iqn: iqn.2016-04.fr.enssib:${vol}, lun: 0, fsType: ext4 }\n`;
    const mk = (name: string, files: Record<string, string>) => {
      mkdirSync(join(root, name, 'hooks'), { recursive: true });
      for (const [f, c] of Object.entries(files)) writeFileSync(join(root, name, f), c);
    };
    mk('mail', { 'deployment.yaml': dep('mail', 'mail', 'site'), 'hooks/pre-snapshot.mjs': 'await $`true`\n' });
    mk('ldap', { 'deployment.yaml': dep('ldap', 'ldap'), 'enssib.yaml': 'backup: { freeze: true, freezeSeconds: 20 }\n' });
    // No declaration: its (broken) YAML is never read.
    mk('www', { 'deployment.yaml': 'kind: [broken\n' });
    const got = findQuiesce(root, site, 'default', ['mail', 'ldap', 'www', 'other']);
    expect([...got.keys()].sort()).toEqual(['ldap', 'mail']);
    expect(got.get('mail')).toEqual({ services: [{ service: 'mail', dir: join(root, 'mail'), namespace: 'site', pre: join(root, 'mail/hooks/pre-snapshot.mjs'), post: null }], freezeSeconds: null });
    expect(got.get('ldap')).toEqual({ services: [{ service: 'ldap', dir: join(root, 'ldap'), namespace: 'default', pre: null, post: null }], freezeSeconds: 20 });
    expect(findQuiesce(join(root, 'absent'), site, 'default', ['mail']).size).toBe(0);
  });

  it('a bad freezeSeconds in enssib.yaml is a clear error', () => {
    const root = mkdtempSync(join(tmpdir(), 'enssib-quiesce-'));
    mkdirSync(join(root, 'db'));
    writeFileSync(join(root, 'db', 'enssib.yaml'), 'backup: { freeze: true, freezeSeconds: 100000 }\n');
    expect(() => findQuiesce(root, site, 'default', ['db'])).toThrow(/enssib\.yaml: backup\.freezeSeconds/);
  });

  it('thawTimerArgv: a bounded timer; hostile mount points stay one argument', () => {
    const argv = thawTimerArgv('kvol', "/mnt/a b;rm -rf /'", 45);
    expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(argv.at(-1)).toBe("/mnt/a b;rm -rf /'");
    expect(argv).toContain('45');
    expect(() => thawTimerArgv('kvol', '/mnt', 0)).toThrow(/whole number of seconds/);
  });
});

describe('backup snapshot with backup.method: borg (fake hosts)', () => {
  const PASS = '/root/enssib-borg.passphrase';
  const repo = { path: '/srv/backup/borg', remote: null, passphraseFile: PASS };
  const borgSite: BackupSite = { ...bsite, borg: repo };
  const ENV = `env 'BORG_PASSCOMMAND=cat -- ${PASS}' 'BORG_RSH=ssh -o BatchMode=yes -o StrictHostKeyChecking=yes' BORG_RELOCATED_REPO_ACCESS_IS_OK=no BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=no BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=NO BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=NO borg`;
  const CREATE = `${ENV} create --json --read-special --chunker-params fixed,1048576 --compression zstd,3 --timestamp 2026-12-03T02:00:00 /srv/backup/borg::kvol.20261203T020000Z /dev/vg_cluster/kvol-enssib-snap`;
  const borgCalls = (calls: string[]) => calls.filter((c) => /^env .*borg|enssib-borg|enssib-backup-record|^lvcreate|^lvremove|^rm /.test(c));

  it('the same phases; only the copy differs: borg init where there is none, borg create of the snapshot, a record from its --json stats', async () => {
    const w = world();
    const { report, hosts, calls, outcome } = await backup(w, undefined, undefined, borgSite);
    expect(report.exitCode, JSON.stringify(report.phases.flatMap((p) => p.hosts.filter((h) => h.error)), null, 1)).toBe(ExitCode.ok);
    const titles = report.phases.map((p) => p.title);
    expect(titles).toContain(PHASE_BORG_INIT);
    expect(titles).toContain(PHASE_COPY_BORG);
    expect(titles).not.toContain(PHASE_COPY);
    expect(titles.indexOf(PHASE_BORG_INIT)).toBeLessThan(titles.indexOf('take the export offline on the other storage server'));
    const d1 = calls('data1');
    const init = hosts.host('data1').calls.find((c) => c[0] === 'sh' && c[1] === '-c' && /borg.* info .*\|\| exec .*borg.* init --encryption=repokey-blake2/.test(c[2] ?? ''));
    expect(init).toBeDefined();
    expect(borgCalls(d1)).toEqual(['lvcreate --yes --snapshot --name kvol-enssib-snap --size 52m vg_cluster/kvol', `bash enssib-borg-create /dev/vg_cluster/kvol-enssib-snap ${CREATE.replaceAll("'", '')}`, 'lvremove --yes vg_cluster/kvol-enssib-snap', 'sh enssib-backup-record /srv/backup/kvol/kvol.20261203T020000Z.json']);
    // No image, no partial file: nothing of the image method runs.
    expect(d1.some((c) => /enssib-backup-copy|\.partial /.test(c) || c.startsWith('mv '))).toBe(false);
    expect(JSON.parse(recordWritten(hosts.host('data1')) ?? '{}')).toEqual({
      format: 1,
      id: req.id,
      volume: 'kvol',
      method: 'borg',
      time: '2026-12-03T02:00:00.000Z',
      sizeBytes: 268435456,
      compressedBytes: 200000000,
      deduplicatedBytes: 1048576,
      durationMs: 1500,
      snapshotFillPercent: 0,
      archive: req.id,
      tool: 'enssib 0.1.0',
    });
    expect(w.snapshot).toBeNull();
    expect(w.exported2 && w.active2).toBe(true);
    expect(outcome).toMatchObject({ status: 'ok', pathsOk: true });
    expect(JSON.stringify(hosts.host('data1').calls)).not.toMatch(/BORG_PASSPHRASE=/);
  });

  it('borg create reports how far it read the snapshot: progress events, as for the image copy', async () => {
    const events: RunEvent[] = [];
    const { report } = await backup(world(), undefined, { event: (e) => events.push(e) }, borgSite);
    expect(report.exitCode).toBe(ExitCode.ok);
    expect(events.filter((e) => e.type === 'progress')).toEqual([0, 134217728, 268435456].map((done) => ({ type: 'progress', phase: PHASE_COPY_BORG, host: 'data1', item: 'kvol', done, total: 268435456 })));
  });

  it('a borg create that fails leaves no record; the snapshot is removed and data2 put back', async () => {
    const w = world({ borgCreate: 'fail' });
    const { report, hosts, calls, outcome } = await backup(w, undefined, undefined, borgSite);
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(report.items?.[0]?.stoppedAt).toBe(PHASE_COPY_BORG);
    expect(recordWritten(hosts.host('data1'))).toBeUndefined();
    expect(calls('data1')).toContain('lvremove --yes vg_cluster/kvol-enssib-snap');
    expect(w.snapshot).toBeNull();
    expect(w.exported2 && w.active2).toBe(true);
    expect(outcome).toMatchObject({ status: 'failed', record: null });
  });

  it('a snapshot that filled up during borg create: the archive is deleted again, no record kept', async () => {
    const w = world({ fillDuringCopy: true });
    const { report, hosts, calls, outcome } = await backup(w, undefined, undefined, borgSite);
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(report.items?.[0]?.stoppedAt).toBe(PHASE_RELEASE);
    expect(outcome.error).toMatch(/became invalid.*the archive is not kept/);
    expect(recordWritten(hosts.host('data1'))).toBeUndefined();
    expect(calls('data1').some((c) => /enssib-backup-record/.test(c))).toBe(false);
    const del = hosts.host('data1').calls.find((c) => c[3] === 'enssib-borg-delete');
    expect(del?.slice(4)).toEqual(['kvol.20261203T020000Z', ...borgArgv(repo, ['delete', '/srv/backup/borg::kvol.20261203T020000Z'])]);
    expect(w.snapshot).toBeNull();
  });

  it('a client dry run prints the real borg commands, with the passphrase file\u2019s path only', async () => {
    const report = await runPlan(snapshotPlan(site, borgSite, [req], lockOwner(['enssib', 'backup'], new Date(0), 'tok'), 1), { mode: 'client', concurrency: 4, hosts: fakePool(() => ok()) });
    const lines = report.phases.flatMap((p) => p.hosts.flatMap((h) => h.actions));
    expect(lines).toContainEqual(expect.stringContaining(quote(borgCopyArgv(repo, req.id, '/dev/vg_cluster/kvol-enssib-snap'))));
    expect(lines.join('\n')).toContain(CREATE);
    expect(lines).toContainEqual(expect.stringContaining(quote(initArgv(repo))));
    expect(lines.join('\n')).toContain(`BORG_PASSCOMMAND=cat -- ${PASS}`);
  });

  it('a volume named borg is refused with the borg method (its catalogue folder would be the repository)', async () => {
    const r = { ...req, volume: 'borg', id: 'borg.20261203T020000Z' };
    const report = await runPlan(snapshotPlan(site, borgSite, [r], lockOwner(['enssib', 'backup'], new Date(0), 'tok'), 1), { mode: 'apply', concurrency: 4, hosts: fakePool(responder(world())) });
    expect(report.exitCode).toBe(ExitCode.failed);
    expect(snapshotOutcome(r, report).error).toMatch(/volume "borg" cannot be backed up with the borg method/);
  });
});
