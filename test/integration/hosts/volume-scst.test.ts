import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asIdentity, scstIdentity } from '../../../src/storage/identity.js';
import { devices, parseScstConf, renderScstConf, unsafeDevices, upsertVolume } from '../../../src/storage/targets/scst.js';
import { assertBuilt } from '../../support/cli.js';
import { startKubeStandIn, type KubeStandIn } from '../../support/kube-stand-in/index.js';
import { volumeLab } from './volume-lab.js';

/**
 * The SCST path of the volume commands over real OpenSSH (hosts lab) with
 * stand-in storage binaries: the exact argv each host receives, the
 * /etc/scst.conf written on data1 and data2 (every object enssib does not
 * manage kept), convergence, the refusals, resize, list, --pv and delete.
 */
const v = volumeLab();
const SITE = readFileSync(join(import.meta.dirname, '..', '..', 'unit', 'storage', 'fixtures', 'scst-site.conf'), 'utf8');
const DATA2_START = 'TARGET_DRIVER iscsi {\n\tenabled 1\n}\n';
const IQN = 'iqn.2016-04.fr.enssib:mail';
let identity = '';
let kube: KubeStandIn;
let kubeconfig = '';
/** The lab inventory with kubernetes.api set to the stand-in: enssib refuses a kubeconfig whose server is not the inventory's. */
let kubeInventory = '';

beforeAll(async () => {
  assertBuilt();
  v.install();
  v.reset();
  v.writeFile('data1', '/etc/scst.conf', SITE, '0600');
  v.writeFile('data2', '/etc/scst.conf', DATA2_START, '0644');
  kube = await startKubeStandIn();
  kubeconfig = kube.writeKubeconfig(join(mkdtempSync(join(tmpdir(), 'enssib-kube-')), 'config'));
  kubeInventory = v.lab.variant((t) => t.replace('https://api.cluster.enssib.fr:6443', kube.url));
});

afterAll(async () => {
  v.uninstall();
  await kube?.close();
});


/** The read-only checks `volume create mail` runs on each storage server, in order. */
const FACTS_MAIL = [
  'drbdadm role r0',
  'drbdadm cstate r0',
  'drbdadm dstate r0',
  'vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free,vg_extent_size,vg_extent_count,vg_free_count vg_cluster',
  'lvs --reportformat json --units b --nosuffix -o lv_name,vg_name,lv_size,lv_tags,lv_attr,lv_active,lv_path,lv_device_open vg_cluster',
  'drbdadm sh-dev r0',
  'pvs --noheadings -o pv_name --select vg_name=vg_cluster',
];

describe('volume create on SCST (stand-ins) over real ssh', () => {
  it('creates the LV, exports it on both servers with one identity, and tells every worker', async () => {
    const r = await v.enssib(['volume', 'create', 'mail', '10G']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    identity = /identity ([0-9a-f]{32})/.exec(r.stdout)?.[1] ?? '';
    expect(identity).toMatch(/^[0-9a-f]{32}$/);
    expect(r.stdout).toContain('Volume mail created: 10G, ext4.');
    expect(r.stdout).toContain('Kubernetes iSCSI volume:\n  iscsi:\n    targetPortal: 10.66.6.1:3260\n    portals: [10.66.6.2:3260]\n    iqn: iqn.2016-04.fr.enssib:mail\n    lun: 0\n    fsType: ext4');

    // data1, the metadata host: facts, lvcreate with the identity tag, mkfs, the SCST edit applied once
    const d1 = v.lines('data1');
    expect(d1.filter((l) => !l.startsWith('scstadmin -noprompt -write_config'))).toEqual([
      ...FACTS_MAIL,
      `lvcreate --yes --wipesignatures y --zero y --activate y --name mail --size 10g --addtag enssib --addtag enssib_id_${identity} --addtag enssib_fs_ext4 vg_cluster`,
      // mkfs only on the LV just created, without -F, after wipefs and blkid found no signature
      'wipefs -n -- /dev/vg_cluster/mail',
      'blkid -p -- /dev/vg_cluster/mail',
      'mkfs.ext4 -q /dev/vg_cluster/mail',
      'scstadmin -noprompt -config /etc/scst.conf',
    ]);
    expect(d1.filter((l) => l.startsWith('scstadmin -noprompt -write_config /tmp/'))).toHaveLength(1);
    // data2: facts, activation, the SCST edit applied once; never lvcreate
    expect(v.lines('data2').filter((l) => !l.startsWith('scstadmin -noprompt -write_config'))).toEqual([
      ...FACTS_MAIL,
      'lvchange --activate y vg_cluster/mail',
      'scstadmin -noprompt -config /etc/scst.conf',
    ]);
    // every worker: discovery on both portals; node01 also logs in, checks and logs out
    for (const w of v.workers) {
      const calls = v.lines(w, 'iscsiadm');
      expect(calls.slice(0, 5)).toEqual([
        'iscsiadm -m node',
        'iscsiadm -m discovery -t sendtargets -p 10.66.6.1:3260 -o new -o update',
        `iscsiadm -m node -T ${IQN} -p 10.66.6.1:3260 -o show`,
        'iscsiadm -m discovery -t sendtargets -p 10.66.6.2:3260 -o new -o update',
        `iscsiadm -m node -T ${IQN} -p 10.66.6.2:3260 -o show`,
      ]);
      if (w === 'node01') {
        expect(calls.slice(5)).toEqual([
          'iscsiadm -m session -P 3',
          `iscsiadm -m node -T ${IQN} -p 10.66.6.1:3260 --login`,
          `iscsiadm -m node -T ${IQN} -p 10.66.6.2:3260 --login`,
          'iscsiadm -m session -P 3', // the wait for the paths, whose last reading is the check
          `iscsiadm -m node -T ${IQN} -p 10.66.6.1:3260 --logout`,
          `iscsiadm -m node -T ${IQN} -p 10.66.6.2:3260 --logout`,
        ]);
        // one remote script: the map is flushed after the logout, udev settled first, when multipathd has left it
        expect(v.lines(w).filter((l) => /^(multipath|udevadm|dmsetup)/.test(l))).toEqual([
          'udevadm settle --timeout=10',
          'multipath -ll',
          'udevadm settle --timeout=30',
          expect.stringMatching(/^dmsetup info 36001405[0-9a-f]{25}$/), // gone with the sessions: no multipath -f
        ]);
      } else expect(calls).toHaveLength(5);
    }
  });

  it('writes /etc/scst.conf as data: the volume added, every other object kept, the mode kept, the file applied', () => {
    const id = asIdentity(identity);
    const want = (start: string) => renderScstConf(upsertVolume(parseScstConf(start), { name: 'mail', filename: '/dev/vg_cluster/mail', identity: id, iqn: IQN }));
    const f1 = v.file('data1', '/etc/scst.conf');
    const f2 = v.file('data2', '/etc/scst.conf');
    expect(f1).toBe(want(SITE));
    expect(f2).toBe(want(DATA2_START));
    expect(f1).toContain('IncomingUser "joe 12charsecret"'); // the site's secrets and devices stay
    expect(f1).toContain('DEVICE legacy {');
    expect(v.exec('data1', 'stat -c %a /etc/scst.conf').trim()).toBe('600');
    expect(v.exec('data2', 'stat -c %a /etc/scst.conf').trim()).toBe('644');
    // the same device, nv_cache 0, write_through 1, one identity on both servers
    const dev = (text: string) => devices(parseScstConf(text)).find((d) => d.device.args[0] === 'mail');
    const block = (text: string) => renderScstConf({ items: [dev(text)?.device as never], finalNewline: false });
    expect(block(f1)).toBe(block(f2));
    expect(block(f1)).toBe(
      `\tDEVICE mail {\n\t\tfilename /dev/vg_cluster/mail\n\t\tnv_cache 0\n\t\twrite_through 1\n\t\tt10_dev_id ${scstIdentity(id).t10DevId}\n\t\tusn ${scstIdentity(id).usn}\n\t}`,
    );
    for (const f of [f1, f2]) expect(unsafeDevices(parseScstConf(f)).map((d) => d.name)).not.toContain('mail');
    // what scstadmin -config applied is the file on disk
    expect(v.file('data1', '/var/lib/enssib-stand-in/scst.running')).toBe(f1);
    expect(v.file('data2', '/var/lib/enssib-stand-in/scst.running')).toBe(f2);
  });

  it('converges: a re-run changes nothing; a missing export on one server is added back', async () => {
    v.clearCalls();
    const r = await v.enssib(['volume', 'create', 'mail', '10G']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Volume mail exists with 10G: unchanged.');
    for (const h of v.hosts) {
      const calls = v.lines(h).join('\n');
      expect(calls).not.toMatch(/lvcreate|mkfs|lvchange|scstadmin -noprompt -config|discovery/);
    }
    // data2 lost its export (file and configuration in force)
    v.writeFile('data2', '/etc/scst.conf', DATA2_START);
    v.writeFile('data2', '/var/lib/enssib-stand-in/scst.running', DATA2_START);
    v.clearCalls();
    const again = await v.enssib(['volume', 'create', 'mail', '10G']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('Volume mail (10G) completed.');
    expect(v.lines('data2', 'scstadmin')).toContain('scstadmin -noprompt -config /etc/scst.conf');
    expect(v.lines('data1', 'scstadmin')).not.toContain('scstadmin -noprompt -config /etc/scst.conf');
    expect(v.file('data2', '/etc/scst.conf')).toContain(`t10_dev_id ${scstIdentity(asIdentity(identity)).t10DevId}`);
  });

  it('refuses another size (pointing to resize), more than the free space, and DRBD not UpToDate — changing nothing', async () => {
    v.clearCalls();
    const other = await v.enssib(['volume', 'create', 'mail', '20G']);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('volume "mail" exists with size 10G, not 20G');
    expect(other.stderr).toContain('To grow it: enssib volume resize mail 20G');
    const big = await v.enssib(['volume', 'create', 'huge', '2T']);
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(/size 2T is more than volume group vg_cluster has free on data1 \(1014G\)/);
    v.writeFile('data2', '/var/lib/enssib-stand-in/drbd', 'Primary/Primary\nSyncTarget\nInconsistent/UpToDate\n');
    const drbd = await v.enssib(['volume', 'create', 'web', '1G']);
    expect(drbd.code).toBe(1);
    expect(drbd.stderr).toContain('data2: DRBD is not ready for a volume change: nothing was changed');
    expect(drbd.stderr).toContain('DRBD disk state of r0 is Inconsistent/UpToDate, not UpToDate/UpToDate');
    v.exec('data2', 'rm -f /var/lib/enssib-stand-in/drbd');
    for (const h of v.hosts) expect(v.lines(h).join('\n')).not.toMatch(/lvcreate|lvchange|scstadmin -noprompt -config|discovery/);
    expect(v.exec('data1', 'test -e /run/enssib/storage.lock && echo held || echo free').trim()).toBe('free');
  });

  it('grows the volume: lvextend, refresh on data2, SCST resync on both, rescan where sessions run', async () => {
    v.exec('node02', `iscsiadm -m node -T ${IQN} -p 10.66.6.1:3260 --login >/dev/null; iscsiadm -m node -T ${IQN} -p 10.66.6.2:3260 --login >/dev/null`);
    v.clearCalls();
    const r = await v.enssib(['volume', 'resize', 'mail', '20G']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('Volume mail grown from 10G to 20G.');
    expect(v.lines('data1', 'lvextend')).toEqual(['lvextend --size 20g vg_cluster/mail']);
    expect(v.lines('data2', 'lvchange')).toEqual(['lvchange --refresh vg_cluster/mail']);
    for (const h of ['data1', 'data2']) expect(v.lines(h, 'scstadmin')).toContain('scstadmin -noprompt -resync_dev mail');
    expect(v.lines('node02', 'iscsiadm')).toContain(`iscsiadm -m node -T ${IQN} -p 10.66.6.1:3260 --rescan`);
    expect(v.lines('node02', 'multipathd')).toHaveLength(1);
    expect(v.lines('node01', 'iscsiadm').join('\n')).not.toContain('--rescan');
    v.exec('node02', `iscsiadm -m node -T ${IQN} -p 10.66.6.1:3260 --logout >/dev/null; iscsiadm -m node -T ${IQN} -p 10.66.6.2:3260 --logout >/dev/null`);
    const shrink = await v.enssib(['volume', 'resize', 'mail', '5G']);
    expect(shrink.code).toBe(2);
    expect(shrink.stderr).toContain('volume "mail" has 20G; it cannot shrink to 5G');
    const unknown = await v.enssib(['volume', 'resize', 'nosuch', '5G']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no volume "nosuch"');
  });

  it('creates the PersistentVolume with --pv, lists who uses the volume, and refuses to delete it while the PV exists', async () => {
    const r = await v.enssib(['-i', kubeInventory, '--kubeconfig', kubeconfig, 'volume', 'create', 'web', '1G', '--pv']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const res = await fetch(`${kube.url}/api/v1/persistentvolumes`, { headers: { authorization: `Bearer ${kube.token}` } });
    const pv = ((await res.json()) as { items: { metadata: { name: string }; spec: { iscsi: unknown; capacity: unknown } }[] }).items;
    expect(pv.map((p) => p.metadata.name)).toEqual(['web']);
    expect(pv[0]?.spec.capacity).toEqual({ storage: '1Gi' });
    expect(pv[0]?.spec.iscsi).toEqual({ targetPortal: '10.66.6.1:3260', portals: ['10.66.6.2:3260'], iqn: 'iqn.2016-04.fr.enssib:web', lun: 0, fsType: 'ext4' });

    const list = await v.enssib(['-i', kubeInventory, '--kubeconfig', kubeconfig, 'volume', 'list', '-o', 'json']);
    expect(list.code, list.stderr).toBe(0);
    const doc = JSON.parse(list.stdout) as { volumes: { name: string; size: string; exports: Record<string, string>; problems: string[]; usedBy: { kind: string; name: string }[] }[] };
    expect(doc.volumes.map((x) => [x.name, x.size, x.exports])).toEqual([
      ['mail', '20G', { data1: 'yes', data2: 'yes' }],
      ['web', '1G', { data1: 'yes', data2: 'yes' }],
      // the site's hand-made export of data1's scst.conf, with no LV in this lab
      ['ldap', null, { data1: 'partial', data2: 'no' }],
    ]);
    expect(doc.volumes.find((x) => x.name === 'ldap')?.problems).toEqual(['exported but has no LV (left by a failed delete: run enssib volume delete again)']);
    expect(doc.volumes.find((x) => x.name === 'web')?.usedBy).toEqual([{ kind: 'PersistentVolume', name: 'web', detail: expect.any(String), binding: true }]);

    v.clearCalls();
    const del = await v.enssib(['-i', kubeInventory, '--kubeconfig', kubeconfig, 'volume', 'delete', 'web', '--yes']);
    expect(del.code).toBe(1);
    expect(del.stderr).toContain('volume "web" is referred to by PersistentVolume web');
    expect(del.stderr).toContain('Nothing was changed.');
    for (const h of v.hosts) expect(v.lines(h).join('\n')).not.toMatch(/lvremove|close_dev|rem_target|--logout|-o delete/);
  });

  it('deletes a volume everywhere: workers forget it, exports removed from the file and the configuration, LV removed', async () => {
    v.clearCalls();
    const r = await v.enssib(['volume', 'delete', 'mail', '--yes', '--skip-pv-check']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('Volume mail deleted.');
    for (const h of ['data1', 'data2']) {
      expect(v.lines(h, 'scstadmin').filter((l) => !l.includes('-write_config'))).toEqual([
        `scstadmin -noprompt -disable_target ${IQN} -driver iscsi`,
        `scstadmin -noprompt -rem_target ${IQN} -driver iscsi`,
        'scstadmin -noprompt -close_dev mail -handler vdisk_blockio',
      ]);
      expect(v.file(h, '/etc/scst.conf')).not.toContain('mail');
      expect(v.file(h, '/etc/scst.conf')).toContain('DEVICE web {');
    }
    expect(v.file('data1', '/etc/scst.conf')).toContain('DEVICE legacy {');
    expect(v.lines('data1', 'lvremove')).toEqual(['lvremove --yes vg_cluster/mail']);
    expect(v.lines('data2', 'lvchange')).toEqual(['lvchange --activate n vg_cluster/mail']);
    for (const w of v.workers) expect(v.lines(w, 'iscsiadm')).toContain(`iscsiadm -m node -T ${IQN} -o delete`);
    const again = await v.enssib(['volume', 'delete', 'mail', '--yes', '--skip-pv-check']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('no volume "mail"');
  });
});
