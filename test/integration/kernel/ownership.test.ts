import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, enssib } from '../../support/cli.js';
import { kernelLab } from './lab.js';

/**
 * enssib never destroys what it did not make, on real LVM, DRBD and LIO (the
 * kernel lab's VMs): a re-run of `volume create` on an LV that holds data
 * never formats it; `volume delete` refuses an LV without enssib's tags;
 * `volume delete` refuses while an initiator outside the inventory has a
 * session on the target; `volume create` refuses a volume group on a physical volume that is not the
 * inventory's DRBD device, and a size beyond the VG's room; the storage lock
 * lives in a root-only directory.
 */
const lab = kernelLab();
const DATA = 'kown';
const FOREIGN = 'nfsdata';
const ID = '5e1f0c0ffee0000000000000000000aa';
const LOOP_FILE = '/root/enssib-local-pv.img';

function scrub(): void {
  lab.sh(
    'node01',
    `for p in 10.66.6.1:3260 10.66.6.2:3260; do iscsiadm -m node -T iqn.2016-04.fr.enssib:${DATA} -p $p --logout >/dev/null 2>&1; done
     iscsiadm -m node -T iqn.2016-04.fr.enssib:${DATA} -o delete >/dev/null 2>&1; udevadm settle; true`,
  );
  for (const vm of ['data1', 'data2']) {
    lab.sh(vm, `[ -d /sys/kernel/config/target/iscsi/iqn.2016-04.fr.enssib:${DATA} ] && targetcli /iscsi delete iqn.2016-04.fr.enssib:${DATA} >/dev/null
      ls -d /sys/kernel/config/target/core/iblock_*/${DATA} >/dev/null 2>&1 && targetcli /backstores/block delete ${DATA} >/dev/null; targetcli saveconfig >/dev/null; true`);
  }
  lab.sh('data2', `lvs vg_cluster/${DATA} >/dev/null 2>&1 && lvchange -an vg_cluster/${DATA}; true`);
  lab.sh('data1', `for l in ${DATA} ${FOREIGN}; do lvs vg_cluster/$l >/dev/null 2>&1 && lvremove -y vg_cluster/$l; done; rm -f /run/enssib/storage.lock; true`);
  // the local-disk VG of the PV test, and data1's LVM filter as up.sh wrote it
  lab.sh(
    'data1',
    `vgs vg_local >/dev/null 2>&1 && vgremove -y vg_local >/dev/null
     for l in $(losetup -j ${LOOP_FILE} -O NAME -n 2>/dev/null); do pvremove -y "$l" >/dev/null 2>&1; losetup -d "$l"; done
     rm -f ${LOOP_FILE}
     [ -f /etc/lvm/lvm.conf.enssib-test ] && mv /etc/lvm/lvm.conf.enssib-test /etc/lvm/lvm.conf; true`,
  );
}

beforeAll(() => {
  assertBuilt();
  scrub();
  lab.waitDrbdReady();
}, 900_000);

afterAll(() => scrub(), 600_000);

describe('never destroy what enssib did not make (real LVM, DRBD, LIO)', () => {
  it('a re-run of create on an existing LV that holds data (no filesystem signature) never formats it', async () => {
    // An LV tagged as an enssib ext4 volume whose content is raw data: blkid finds nothing (exit 2).
    lab.must('data1', `lvcreate -y -n ${DATA} -L 64m --addtag enssib --addtag enssib_id_${ID} --addtag enssib_fs_ext4 vg_cluster >/dev/null
      dd if=/dev/urandom of=/dev/vg_cluster/${DATA} bs=1M count=4 oflag=direct status=none
      blkid -p /dev/vg_cluster/${DATA}; echo "blkid=$?"`);
    const before = lab.must('data1', `dd if=/dev/vg_cluster/${DATA} bs=1M count=4 iflag=direct status=none | sha256sum`).trim();
    const r = await lab.enssib(['volume', 'create', DATA, '64M']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`Volume ${DATA} (64M) completed.`);
    expect(r.stdout).toContain(`identity ${ID}`);
    expect(r.stdout).not.toMatch(/mkfs|wipefs/);
    expect(lab.must('data1', `dd if=/dev/vg_cluster/${DATA} bs=1M count=4 iflag=direct status=none | sha256sum`).trim()).toBe(before);
    expect(lab.sh('data1', `blkid -p /dev/vg_cluster/${DATA}`).code).toBe(2);
    // the lock lived in a root-only directory and is gone
    expect(lab.must('data1', 'stat -c "%U %a" /run/enssib').trim()).toBe('root 700');
    expect(lab.sh('data1', 'test -e /run/enssib/storage.lock').code).not.toBe(0);
  }, 900_000);

  it('delete refuses while an initiator outside the inventory has a session on the target, naming it; then deletes', async () => {
    const outsider = 'iqn.2005-03.org.open-iscsi:outsider';
    const iqn = `iqn.2016-04.fr.enssib:${DATA}`;
    // data2 plays a host outside the inventory: its own iSCSI interface with another initiator name, logged in to data1's portal
    lab.must(
      'data2',
      `set -e
       iscsiadm -m iface -I outsider -o new >/dev/null 2>&1 || true
       iscsiadm -m iface -I outsider -o update -n iface.initiatorname -v ${outsider} >/dev/null
       iscsiadm -m discovery -t sendtargets -p 10.66.6.1:3260 -I outsider -o new >/dev/null
       iscsiadm -m node -T ${iqn} -p 10.66.6.1:3260 -I outsider --login >/dev/null`,
      300_000,
    );
    try {
      expect(lab.must('data1', `cat /sys/kernel/config/target/iscsi/${iqn}/tpgt_1/dynamic_sessions`)).toContain(outsider);
      const r = await lab.enssib(['volume', 'delete', DATA, '--yes', '--skip-pv-check']);
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stderr).toContain(`volume "${DATA}" has iSCSI sessions from initiators that are no worker of the inventory`);
      expect(r.stderr).toContain(`on data1: ${outsider}`);
      expect(r.stderr).toContain('Nothing was changed.');
      expect(lab.sh('data1', `lvs vg_cluster/${DATA}`).code).toBe(0);
    } finally {
      lab.sh('data2', `iscsiadm -m node -T ${iqn} -I outsider --logout >/dev/null 2>&1; iscsiadm -m node -T ${iqn} -I outsider -o delete >/dev/null 2>&1; iscsiadm -m iface -I outsider -o delete >/dev/null 2>&1; udevadm settle; true`, 120_000);
    }
    const r = await lab.enssib(['volume', 'delete', DATA, '--yes', '--skip-pv-check']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`Volume ${DATA} deleted.`);
    expect(lab.sh('data1', `lvs vg_cluster/${DATA}`).code).not.toBe(0);
  }, 900_000);

  it('delete refuses an LV without enssib\'s tags, saying what it is; the LV stays', async () => {
    lab.must('data1', `lvcreate -y -n ${FOREIGN} -L 16m --addtag nfs vg_cluster >/dev/null`);
    const list = await lab.enssib(['volume', 'list']);
    expect(list.stdout).not.toContain(FOREIGN);
    const r = await lab.enssib(['volume', 'delete', FOREIGN, '--yes', '--skip-pv-check']);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toContain(`vg_cluster/${FOREIGN} is not a volume enssib made (it has no "enssib" tag); enssib deletes only its own volumes`);
    expect(r.stderr).toMatch(new RegExp(`LV vg_cluster/${FOREIGN} on data\\d: 16M, (in)?active`));
    expect(r.stderr).toContain('tags: nfs');
    expect(lab.must('data1', `lvs --noheadings -o lv_name,lv_active vg_cluster/${FOREIGN}`)).toMatch(new RegExp(`${FOREIGN}\\s+active`));
  }, 900_000);

  it('create refuses a volume group on a PV that is not the DRBD device, and a size beyond the room', async () => {
    const big = await lab.enssib(['volume', 'create', 'kbig', '3G']);
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(/size 3G is more than volume group vg_cluster has free on data1/);

    // data1: a VG on a loop device (a local disk), seen by LVM once the filter lets loop devices in
    const loop = lab
      .must(
        'data1',
        `set -e
         cp /etc/lvm/lvm.conf /etc/lvm/lvm.conf.enssib-test
         sed -i 's#"a|^/dev/drbd\\[0-9\\]+\\$|", #"a|^/dev/drbd[0-9]+$|", "a|^/dev/loop[0-9]+$|", #' /etc/lvm/lvm.conf
         lvmconfig devices/global_filter | grep -q loop
         truncate -s 64M ${LOOP_FILE}
         l=$(losetup -f --show ${LOOP_FILE})
         vgcreate -y vg_local "$l" >/dev/null
         echo "$l"`,
      )
      .trim();
    expect(loop).toMatch(/^\/dev\/loop\d+$/);
    const dir = mkdtempSync(join(tmpdir(), 'enssib-kinv-'));
    const inv = join(dir, 'inventory.yaml');
    writeFileSync(inv, readFileSync(lab.inventory, 'utf8').replace('volumeGroup: vg_cluster', 'volumeGroup: vg_local').replace(/journal: .*/, `journal: ${join(dir, 'journal.jsonl')}`));
    const r = await enssib(['-i', inv, 'volume', 'create', 'klocal', '16M'], { timeoutMs: 600_000 });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`data1: volume group vg_local has physical volume ${loop}, which is not the device of DRBD resource r0 (/dev/drbd0): a volume there would not be replicated`);
    expect(r.stderr).toContain('nothing was changed');
    expect(lab.must('data1', 'lvs --noheadings -o lv_name vg_local').trim()).toBe('');
  }, 900_000);
});
