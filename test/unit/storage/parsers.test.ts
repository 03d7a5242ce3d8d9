import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  parseDmOpen,
  parseMounts,
  parseMultipath,
  parseNodes,
  parseSessions,
  targetPaths,
  verifyPaths,
  type MultipathMap,
} from '../../../src/storage/initiator.js';
import { asIdentity, lioWwid } from '../../../src/storage/identity.js';
import { LvmReportError, fsFromTags, lvcreateArgv, lvmSize, parseLvs, parseVgs, roundToExtents } from '../../../src/storage/lvm.js';
import { OPEN_MODE, lioExportActions, lioMatches, lioVolumeState, parseLioFacts } from '../../../src/storage/targets/lio.js';

/** Parsers fed with outputs captured on the kernel lab's VMs (Debian 12: lvm2 2.03, open-iscsi 2.1.8, multipath-tools 0.9.4, LIO). */
const fx = (f: string) => readFileSync(join(import.meta.dirname, 'fixtures', f), 'utf8');
const res = (stdout: string, exitCode = 0, stderr = '') => ({ exitCode, stdout, stderr, durationMs: 1 });

describe('LVM reports', () => {
  it('reads vgs and lvs JSON reports (sizes in bytes)', () => {
    expect(parseVgs(fx('vgs-kernel.json'))).toEqual([
      { name: 'vg_cluster', sizeBytes: 2143289344, freeBytes: 2143289344, extentBytes: 4194304, extentCount: 511, freeExtents: 511 },
    ]);
    expect(parseLvs(fx('lvs-kernel.json'))).toEqual([]);
    const withLv = fx('lvs-kernel-volume.json');
    const lvs = parseLvs(withLv);
    expect(lvs.length).toBeGreaterThan(0);
    const lv = lvs.find((l) => l.tags.includes('enssib'));
    expect(lv).toMatchObject({ vg: 'vg_cluster', active: true, path: `/dev/vg_cluster/${lv?.name}` });
    expect(lv?.tags.some((t) => /^enssib_id_[0-9a-f]{32}$/.test(t))).toBe(true);
    expect(fsFromTags(lv?.tags ?? [])).toBe('ext4');
  });

  it('refuses reports it cannot read', () => {
    expect(() => parseLvs('  WARNING: something\n')).toThrow(LvmReportError);
    expect(() => parseLvs('{"report": [{"lv": [{"lv_name": "x", "vg_name": "v", "lv_size": "12G"}]}]}')).toThrow(/expected a size in bytes/);
    expect(() => parseVgs('{"nope": 1}')).toThrow(/unexpected report shape/);
  });

  it('rounds sizes to whole extents and writes them in LVM units', () => {
    expect(roundToExtents(200 * 1024 ** 3, 4 * 1024 ** 2)).toBe(200 * 1024 ** 3);
    expect(roundToExtents(1, 4 * 1024 ** 2)).toBe(4 * 1024 ** 2);
    expect(roundToExtents(5 * 1024 ** 2, 4 * 1024 ** 2)).toBe(8 * 1024 ** 2);
    expect(lvmSize(200 * 1024 ** 3)).toBe('200g');
    expect(lvmSize(1.5 * 1024 ** 4)).toBe('1536g');
    expect(lvmSize(2 * 1024 ** 4)).toBe('2t');
    expect(lvmSize(512 * 1024 ** 2)).toBe('512m');
    expect(lvmSize(1536 * 1024 + 512)).toBe(`${1536 * 1024 + 512}b`);
  });

  it('builds lvcreate with the identity and filesystem tags', () => {
    expect(lvcreateArgv('vg_cluster', 'mail', 200 * 1024 ** 3, ['enssib', 'enssib_id_x', 'enssib_fs_ext4'])).toEqual([
      'lvcreate', '--yes', '--wipesignatures', 'y', '--zero', 'y', '--activate', 'y', '--name', 'mail', '--size', '200g',
      '--addtag', 'enssib', '--addtag', 'enssib_id_x', '--addtag', 'enssib_fs_ext4', 'vg_cluster',
    ]);
  });
});

describe('iSCSI sessions and multipath maps', () => {
  const sessions = parseSessions(res(fx('iscsiadm-session-P3.txt')));
  const maps = parseMultipath(fx('multipath-ll-kernel.txt'));

  it('reads `iscsiadm -m session -P 3`', () => {
    expect(sessions).toEqual([
      { iqn: 'iqn.2016-04.fr.enssib:smoke', portal: '10.66.6.1:3260', sid: 3, state: 'LOGGED_IN', disks: [{ name: 'sda', state: 'running' }] },
      { iqn: 'iqn.2016-04.fr.enssib:smoke', portal: '10.66.6.2:3260', sid: 4, state: 'LOGGED_IN', disks: [{ name: 'sdb', state: 'running' }] },
    ]);
    expect(parseSessions(res('', 21, 'iscsiadm: No active sessions.\n'))).toEqual([]);
    expect(() => parseSessions(res('', 4, 'iscsiadm: initiator reported error\n'))).toThrow(/exit 4/);
  });

  it('reads `multipath -ll`', () => {
    expect(maps).toEqual([
      {
        name: '36001405e0b96a6492d74e4c8a4876db0',
        wwid: '36001405e0b96a6492d74e4c8a4876db0',
        dm: 'dm-0',
        vendorProduct: 'LIO-ORG,smoke',
        size: '256M',
        paths: [
          { hcil: '2:0:0:0', dev: 'sda', dmState: 'active', checker: 'ready', devState: 'running' },
          { hcil: '3:0:0:0', dev: 'sdb', dmState: 'active', checker: 'ready', devState: 'running' },
        ],
      },
    ]);
    // user_friendly_names yes: "mpatha (wwid) dm-0 …"
    const friendly = parseMultipath(fx('multipath-ll-kernel.txt').replace(/^(\S+) dm-0/, 'mpatha ($1) dm-0'));
    expect(friendly[0]).toMatchObject({ name: 'mpatha', wwid: '36001405e0b96a6492d74e4c8a4876db0' });
  });

  it('matches the WWID LIO derives from the unit serial (the identity)', () => {
    // the serial of the captured LUN was e0b96a64-92d7-4e4c-8a48-76db03034e28
    expect(lioWwid(asIdentity('e0b96a6492d74e4c8a4876db03034e28'))).toBe(maps[0]?.wwid);
  });

  it('judges one map with two active paths, and says what is wrong otherwise', () => {
    const portals = ['10.66.6.1:3260', '10.66.6.2:3260'];
    const ok = verifyPaths('iqn.2016-04.fr.enssib:smoke', portals, sessions, maps);
    expect(ok.ok && ok.map.wwid).toBe('36001405e0b96a6492d74e4c8a4876db0');

    const failedPath: MultipathMap[] = maps.map((m) => ({ ...m, paths: m.paths.map((p, i) => (i === 1 ? { ...p, dmState: 'failed', checker: 'faulty' } : p)) }));
    const one = verifyPaths('iqn.2016-04.fr.enssib:smoke', portals, sessions, failedPath);
    expect(one.ok).toBe(false);
    expect(!one.ok && one.problems).toEqual(['map 36001405e0b96a6492d74e4c8a4876db0 has 1 active path(s), expected 2 (sdb failed faulty)']);

    // two servers presenting different identities: two maps of one path each
    const split: MultipathMap[] = [
      { ...(maps[0] as MultipathMap), paths: [(maps[0] as MultipathMap).paths[0] as MultipathMap['paths'][0]] },
      { ...(maps[0] as MultipathMap), name: '36001405ffff', wwid: '36001405ffff', dm: 'dm-1', paths: [(maps[0] as MultipathMap).paths[1] as MultipathMap['paths'][0]] },
    ];
    const two = verifyPaths('iqn.2016-04.fr.enssib:smoke', portals, sessions, split);
    expect(!two.ok && two.problems.join('\n')).toMatch(/form 2 multipath maps .* the storage servers present different device identities/);

    const noSession = verifyPaths('iqn.2016-04.fr.enssib:smoke', portals, sessions.slice(0, 1), maps);
    expect(!noSession.ok && noSession.problems[0]).toBe('no iSCSI session to iqn.2016-04.fr.enssib:smoke through 10.66.6.2:3260');
    expect(targetPaths('iqn.2016-04.fr.enssib:other', sessions, maps)).toMatchObject({ active: 0, total: 0, maps: [] });
  });

  it('reads node records, open counts and mounts', () => {
    expect(parseNodes(res('10.66.6.1:3260,1 iqn.2016-04.fr.enssib:smoke\n10.66.6.2:3260,1 iqn.2016-04.fr.enssib:smoke\n'))).toEqual([
      { portal: '10.66.6.1:3260', tpgt: 1, iqn: 'iqn.2016-04.fr.enssib:smoke' },
      { portal: '10.66.6.2:3260', tpgt: 1, iqn: 'iqn.2016-04.fr.enssib:smoke' },
    ]);
    expect(parseNodes(res('', 21, 'iscsiadm: No records found\n'))).toEqual([]);
    expect([...parseDmOpen(res('36001405e0b96a6492d74e4c8a4876db0 2\n'))]).toEqual([['36001405e0b96a6492d74e4c8a4876db0', 2]]);
    expect([...parseDmOpen(res('No devices found\n'))]).toEqual([]);
    expect(parseMounts(res('/dev/vda / ext4\n/dev/mapper/3600140 /var/lib/kubelet/pods/x/volumes/kubernetes.io~iscsi/mail\\x20data ext4\n'))).toEqual([
      { source: '/dev/vda', target: '/', fstype: 'ext4' },
      { source: '/dev/mapper/3600140', target: '/var/lib/kubelet/pods/x/volumes/kubernetes.io~iscsi/mail data', fstype: 'ext4' },
    ]);
  });
});

describe('LIO configfs facts and targetcli argv', () => {
  const id = asIdentity('e0b96a6492d74e4c8a4876db03034e28');
  const want = { name: 'smoke', dev: '/dev/vg_cluster/smoke', identity: id, iqn: 'iqn.2016-04.fr.enssib:smoke', portal: '10.66.6.1:3260' };

  it('reads the facts script output', () => {
    const s = parseLioFacts(fx('lio-facts-data1.txt'));
    expect(s.backstores).toEqual([{ hba: 'iblock_0', name: 'smoke', dev: '/dev/vg_cluster/smoke', serial: 'e0b96a64-92d7-4e4c-8a48-76db03034e28' }]);
    const full = parseLioFacts(fx('lio-facts-export.txt'));
    const st = lioVolumeState(full, full.backstores[0]?.name ?? '', full.tpgs[0]?.iqn ?? '');
    expect(st.tpg).toMatchObject({ tag: 1, enabled: true, attributes: OPEN_MODE, luns: [{ lun: 0, backstore: `${st.backstore?.hba}/${st.backstore?.name}` }] });
    expect(st.tpg?.portals).toHaveLength(1);
    expect(() => parseLioFacts('error\tno LIO configfs tree at /sys/kernel/config/target (is target_core_mod loaded?)\n')).toThrow(/target_core_mod/);
  });

  it('creates the whole export from nothing, with the identity as wwn and one portal', () => {
    const { actions } = lioExportActions({ backstore: null, tpg: null }, want);
    const lines = actions.map((a) => (a.kind === 'command' ? a.argv.join(' ') : a.kind));
    expect(lines).toEqual([
      'targetcli /backstores/block create name=smoke dev=/dev/vg_cluster/smoke wwn=e0b96a64-92d7-4e4c-8a48-76db03034e28',
      'targetcli /iscsi create iqn.2016-04.fr.enssib:smoke',
      expect.stringMatching(/^sh -c .*0\.0\.0\.0:3260.* drop-default-portal iqn\.2016-04\.fr\.enssib:smoke$/),
      'targetcli /iscsi/iqn.2016-04.fr.enssib:smoke/tpg1/portals create ip_address=10.66.6.1 ip_port=3260',
      'targetcli /iscsi/iqn.2016-04.fr.enssib:smoke/tpg1/luns create storage_object=/backstores/block/smoke lun=0',
      'targetcli /iscsi/iqn.2016-04.fr.enssib:smoke/tpg1 set attribute generate_node_acls=1 cache_dynamic_acls=1 demo_mode_write_protect=0 authentication=0',
      'targetcli saveconfig',
    ]);
  });

  it('adds only what is missing, and nothing when the export is as wanted', () => {
    const s = parseLioFacts(fx('lio-facts-data1.txt'));
    const st = lioVolumeState(s, 'smoke', want.iqn);
    expect(lioExportActions(st, want).actions.map((a) => (a.kind === 'command' ? a.argv[1] : ''))).toEqual(['/iscsi', '-c', `/iscsi/${want.iqn}/tpg1/portals`, `/iscsi/${want.iqn}/tpg1/luns`, `/iscsi/${want.iqn}/tpg1`, 'saveconfig']);
    const complete = {
      backstore: st.backstore,
      tpg: { iqn: want.iqn, tag: 1, enabled: true, attributes: { ...OPEN_MODE }, portals: ['10.66.6.1:3260'], luns: [{ lun: 0, backstore: 'iblock_0/smoke' }], acls: [] },
    };
    expect(lioMatches(complete, want)).toBe(true);
    expect(lioExportActions(complete, want).actions).toEqual([]);
    const withDefault = { ...complete, tpg: { ...complete.tpg, portals: ['0.0.0.0:3260'] } };
    expect(lioExportActions(withDefault, want).actions.map((a) => (a.kind === 'command' ? a.argv.slice(1, 3).join(' ') : ''))).toEqual([
      `/iscsi/${want.iqn}/tpg1/portals delete`,
      `/iscsi/${want.iqn}/tpg1/portals create`,
      'saveconfig',
    ]);
  });

  it('never replaces a stale export of an earlier volume (other identity or device)', () => {
    const s = parseLioFacts(fx('lio-facts-data1.txt'));
    const st = lioVolumeState(s, 'smoke', want.iqn);
    expect(() => lioExportActions(st, { ...want, identity: asIdentity('f'.repeat(32)) })).toThrow(/has the identity \(wwn\) e0b96a64-.* not the volume's ffffffff-/);
    expect(() => lioExportActions(st, { ...want, dev: '/dev/vg_cluster/other' })).toThrow(/exports \/dev\/vg_cluster\/smoke, not \/dev\/vg_cluster\/other/);
  });
});
