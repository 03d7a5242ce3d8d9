import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, assertBuilt } from '../../support/cli.js';
import { lioSerial, asIdentity } from '../../../src/storage/identity.js';
import { kernelLab } from './lab.js';

/**
 * The LIO path for real, on the kernel lab's three VMs (data1, data2 with
 * DRBD dual-primary and LVM, node01 with open-iscsi and multipathd): create,
 * re-run, resize with data written through the multipath device, list,
 * delete, a failure in the middle undone, and data2 frozen during the worker
 * phase. The tests run in order and share the volumes they create.
 */
const lab = kernelLab();
const V = 'kvol';
const IQN = `iqn.2016-04.fr.enssib:${V}`;
const P1 = '10.66.6.1:3260';
const P2 = '10.66.6.2:3260';
const timings: Record<string, number> = {};
let identity = '';
let wwid = '';

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t = Date.now();
  try {
    return await fn();
  } finally {
    timings[what] = (Date.now() - t) / 1000;
  }
}

/** Removes what earlier (interrupted) runs may have left, with plain commands. */
function scrub(names: string[]): void {
  lab.sh('data2', 'rm -f /usr/local/sbin/targetcli');
  for (const vm of ['data1', 'data2']) {
    try {
      process.kill(lab.pid(vm), 'SIGCONT');
    } catch {
      /* not running: up.sh would have failed */
    }
  }
  for (const n of names) {
    lab.sh(
      'node01',
      `for m in $(findmnt -rn -o TARGET | grep '^/mnt/${n}$'); do umount "$m"; done
       for p in ${P1} ${P2}; do iscsiadm -m node -T iqn.2016-04.fr.enssib:${n} -p $p --logout >/dev/null 2>&1; done
       iscsiadm -m node -T iqn.2016-04.fr.enssib:${n} -o delete >/dev/null 2>&1; udevadm settle; true`,
    );
    for (const vm of ['data1', 'data2']) {
      lab.sh(vm, `[ -d /sys/kernel/config/target/iscsi/iqn.2016-04.fr.enssib:${n} ] && targetcli /iscsi delete iqn.2016-04.fr.enssib:${n} >/dev/null
        ls -d /sys/kernel/config/target/core/iblock_*/${n} >/dev/null 2>&1 && targetcli /backstores/block delete ${n} >/dev/null; targetcli saveconfig >/dev/null; true`);
    }
    lab.sh('data2', `lvs vg_cluster/${n} >/dev/null 2>&1 && lvchange -an vg_cluster/${n}; true`);
    lab.sh('data1', `lvs vg_cluster/${n} >/dev/null 2>&1 && lvremove -y vg_cluster/${n}; rm -f /run/enssib/storage.lock; true`);
  }
}

/**
 * Dual-primary DRBD has no fencing in the lab: when a storage server stops
 * answering, each Primary writes a new current UUID, and on reconnection DRBD
 * declares a split brain and goes StandAlone (after-sb-2pri disconnect). The
 * recovery an operator runs: the side that was frozen (it wrote nothing) drops
 * its exports, deactivates its LVs, becomes Secondary and reconnects
 * discarding its data; data1 reconnects; after the resync data2 is Primary again.
 */
function healSplitBrain(): void {
  lab.must(
    'data1',
    `for i in $(seq 1 60); do c=$(drbdadm cstate r0); [ "$c" = StandAlone ] || [ "$c" = Connected ] && break; sleep 1; done; true`,
    120_000,
  );
  if (lab.sh('data1', 'drbdadm cstate r0').stdout.trim() === 'Connected' && lab.sh('data2', 'drbdadm cstate r0').stdout.trim() === 'Connected') return;
  lab.must(
    'data2',
    `set -e
     targetcli clearconfig confirm=True >/dev/null
     vgchange -an vg_cluster >/dev/null
     drbdadm secondary r0
     drbdadm disconnect r0 >/dev/null 2>&1 || true
     drbdadm -- --discard-my-data connect r0`,
    300_000,
  );
  lab.must('data1', 'drbdadm connect r0 >/dev/null 2>&1 || true');
  lab.must('data2', `for i in $(seq 1 120); do [ "$(drbdadm dstate r0)" = UpToDate/UpToDate ] && break; sleep 2; done; drbdadm primary r0; vgscan >/dev/null 2>&1; true`, 300_000);
}

beforeAll(() => {
  assertBuilt();
  scrub([V, 'kfail', 'kfrz']);
  healSplitBrain();
  lab.waitDrbdReady();
}, 900_000);

afterAll(() => {
  scrub([V, 'kfail', 'kfrz']);
  process.stderr.write(`kernel lab timings (s): ${JSON.stringify(timings)}\n`);
}, 600_000);

describe('volume create / resize / list / delete on real LIO, DRBD, LVM, open-iscsi and multipath', () => {
  it('creates a volume: LV on data1, active on data2, one identity on both targets, known on node01, no session left', async () => {
    const r = await timed('create', () => lab.enssib(['volume', 'create', V, '256M']));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`Volume ${V} created: 256M, ext4.`);
    identity = /identity ([0-9a-f]{32})/.exec(r.stdout)?.[1] ?? '';
    wwid = /one multipath map (\S+) with two active paths/.exec(r.stdout)?.[1] ?? '';
    expect(identity).toMatch(/^[0-9a-f]{32}$/);
    expect(wwid).toBe(`36001405${identity.slice(0, 25)}`);
    expect(r.stdout).toContain(`iqn: ${IQN}`);

    expect(lab.must('data1', `lvs --noheadings -o lv_tags,lv_size --units b --nosuffix vg_cluster/${V}`)).toMatch(new RegExp(`enssib_id_${identity}.*268435456`));
    expect(lab.must('data2', `lvs --noheadings -o lv_active vg_cluster/${V}`).trim()).toBe('active');
    for (const [vm, portal] of [
      ['data1', P1],
      ['data2', P2],
    ] as const) {
      const serial = lab.must(vm, `sed 's/.*: //' /sys/kernel/config/target/core/iblock_*/${V}/wwn/vpd_unit_serial`).trim();
      expect(serial).toBe(lioSerial(asIdentity(identity)));
      expect(lab.must(vm, `ls /sys/kernel/config/target/iscsi/${IQN}/tpgt_1/np/`).trim()).toBe(portal);
      expect(lab.must(vm, `cat /sys/kernel/config/target/iscsi/${IQN}/tpgt_1/enable`).trim()).toBe('1');
      // persisted for the next boot
      expect(lab.must(vm, 'cat /etc/rtslib-fb-target/saveconfig.json')).toContain(lioSerial(asIdentity(identity)));
    }
    const nodes = lab.must('node01', 'iscsiadm -m node');
    expect(nodes).toContain(`${P1},1 ${IQN}`);
    expect(nodes).toContain(`${P2},1 ${IQN}`);
    expect(lab.sh('node01', `iscsiadm -m session 2>&1 | grep -c '${IQN} ' || true`).stdout.trim()).toBe('0');
    expect(lab.must('node01', 'udevadm settle; dmsetup ls --target multipath')).not.toContain(wwid);
  }, 900_000);

  it('converges: the same command again reports unchanged', async () => {
    const r = await timed('re-run', () => lab.enssib(['volume', 'create', V, '256M']));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`Volume ${V} exists with 256M: unchanged.`);
    expect(r.stdout).toContain(`identity ${identity}`);
  }, 900_000);

  it('refuses the same name with another size and points to volume resize', async () => {
    const r = await lab.enssib(['volume', 'create', V, '512M']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`volume "${V}" exists with size 256M, not 512M`);
    expect(r.stderr).toContain(`enssib volume resize ${V} 512M`);
  }, 900_000);

  it('grows the volume while node01 has it mounted, and the data written through the map survives', async () => {
    lab.must(
      'node01',
      `set -e
       for p in ${P1} ${P2}; do iscsiadm -m node -T ${IQN} -p $p --login >/dev/null; done
       for i in $(seq 1 30); do udevadm settle; [ "$(multipath -ll ${wwid} | grep -c 'active ready running')" = 2 ] && break; sleep 1; done
       mkdir -p /mnt/${V}; mount /dev/mapper/${wwid} /mnt/${V}
       dd if=/dev/urandom of=/mnt/${V}/blob bs=1M count=32 status=none; sync
       sha256sum /mnt/${V}/blob | cut -d' ' -f1 > /root/${V}.sha`,
      300_000,
    );
    const r = await timed('resize', () => lab.enssib(['volume', 'resize', V, '512M', '--grow-fs']));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`Volume ${V} grown from 256M to 512M.`);
    expect(r.stdout).toContain(`node01: the ext4 filesystem mounted at /mnt/${V} was grown.`);
    expect(lab.must('data2', `blockdev --getsize64 /dev/vg_cluster/${V}`).trim()).toBe(String(512 * 1024 ** 2));
    expect(lab.must('node01', `blockdev --getsize64 /dev/mapper/${wwid}`).trim()).toBe(String(512 * 1024 ** 2));
    expect(Number(lab.must('node01', `df -B1 --output=size /mnt/${V} | tail -1`).trim())).toBeGreaterThan(400 * 1024 ** 2);
    expect(lab.must('node01', `multipath -ll ${wwid} | grep -c 'active ready running'`).trim()).toBe('2');
    const sum = lab.must('node01', `sync; echo 3 > /proc/sys/vm/drop_caches; sha256sum /mnt/${V}/blob | cut -d' ' -f1; cat /root/${V}.sha`).trim().split('\n');
    expect(sum[0]).toBe(sum[1]);
  }, 900_000);

  it('lists the volume: size, exports on data1 and data2, two active paths on node01', async () => {
    const r = await timed('list', () => lab.enssib(['volume', 'list', '-o', 'json']));
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { volumes: { name: string; sizeBytes: number; exports: Record<string, string>; paths: Record<string, unknown>; identity: string }[]; usedByUnknown?: string };
    const v = doc.volumes.find((x) => x.name === V);
    expect(v).toMatchObject({ sizeBytes: 512 * 1024 ** 2, identity, exports: { data1: 'yes', data2: 'yes' }, paths: { node01: { active: 2, total: 2 } } });
    expect(doc.usedByUnknown).toMatch(/USED BY is unknown/);
    const text = await lab.enssib(['volume', 'list']);
    expect(text.stdout).toMatch(new RegExp(`${V}\\s+512M\\s+ext4\\s+yes\\s+yes\\s+node01 2/2 active`));
  }, 900_000);

  it('refuses to delete while node01 has it mounted, and changes nothing', async () => {
    const r = await lab.enssib(['volume', 'delete', V, '--yes', '--skip-pv-check']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`volume "${V}" is mounted on node01`);
    expect(r.stderr).toContain('Nothing was changed.');
    expect(lab.sh('data1', `lvs vg_cluster/${V}`).code).toBe(0);
    expect(lab.sh('data2', `test -d /sys/kernel/config/target/iscsi/${IQN}`).code).toBe(0);
    expect(lab.must('node01', `findmnt -rn -o TARGET /mnt/${V}`).trim()).toBe(`/mnt/${V}`);
  }, 900_000);

  it('deletes it everywhere once unmounted: sessions, maps, records, exports, LV', async () => {
    lab.must('node01', `umount /mnt/${V}`);
    const r = await timed('delete', () => lab.enssib(['volume', 'delete', V, '--yes', '--skip-pv-check']));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`Volume ${V} deleted.`);
    expect(lab.sh('data1', `lvs vg_cluster/${V}`).code).not.toBe(0);
    expect(lab.sh('data2', `vgscan >/dev/null 2>&1; lvs vg_cluster/${V}`).code).not.toBe(0);
    for (const vm of ['data1', 'data2']) {
      expect(lab.sh(vm, `test -e /sys/kernel/config/target/iscsi/${IQN} || ls -d /sys/kernel/config/target/core/iblock_*/${V}`).code).not.toBe(0);
    }
    expect(lab.sh('node01', `iscsiadm -m session 2>&1 | grep -c '${IQN} '`).stdout.trim()).toBe('0');
    expect(lab.sh('node01', `iscsiadm -m node -T ${IQN}`).code).toBe(21);
    expect(lab.must('node01', 'udevadm settle; dmsetup ls --target multipath')).not.toContain(wwid);
    const again = await lab.enssib(['volume', 'delete', V, '--yes', '--skip-pv-check']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`no volume "${V}"`);
  }, 900_000);

  it('undoes what it created when the target step fails on data2', async () => {
    lab.must('data2', `printf '#!/bin/sh\\necho "targetcli: injected failure" >&2\\nexit 1\\n' > /usr/local/sbin/targetcli; chmod 755 /usr/local/sbin/targetcli`);
    try {
      const r = await timed('failed create + undo', () => lab.enssib(['volume', 'create', 'kfail', '128M']));
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stderr).toContain('volume create kfail failed at "export on both storage servers with one device identity"');
      expect(r.stderr).toContain('What this run had created was undone.');
      expect(r.stdout).toContain('targetcli: injected failure');
      expect(r.stdout).not.toContain('UNDO FAILED');
    } finally {
      lab.sh('data2', 'rm -f /usr/local/sbin/targetcli');
    }
    expect(lab.sh('data1', 'lvs vg_cluster/kfail').code).not.toBe(0);
    expect(lab.sh('data2', 'dmsetup ls | grep -c vg_cluster-kfail').stdout.trim()).toBe('0');
    for (const vm of ['data1', 'data2']) {
      expect(lab.sh(vm, 'test -e /sys/kernel/config/target/iscsi/iqn.2016-04.fr.enssib:kfail || ls -d /sys/kernel/config/target/core/iblock_*/kfail').code).not.toBe(0);
    }
    expect(lab.sh('node01', 'iscsiadm -m node -T iqn.2016-04.fr.enssib:kfail').code).toBe(21);
    expect(lab.sh('data1', 'test -e /run/enssib/storage.lock').code).not.toBe(0);
  }, 900_000);

  it('reports data2 frozen during the worker phase, and the volume stays usable through data1', async () => {
    const data2 = lab.pid('data2');
    let frozen = false;
    const child = execa('node', [BIN, '-i', lab.inventory, 'volume', 'create', 'kfrz', '128M'], { env: { NO_COLOR: '1', CI: '1' }, reject: false, timeout: 900_000 });
    child.stderr?.on('data', (chunk: Buffer) => {
      if (!frozen && chunk.toString().includes('discovery on every worker')) {
        process.kill(data2, 'SIGSTOP');
        frozen = true;
      }
    });
    let r;
    try {
      r = await timed('create with data2 frozen', async () => child);
      expect(frozen).toBe(true);
      expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(3);
      const out = String(r.stdout);
      expect(out).toContain('Volume kfrz');
      expect(out).toMatch(/Not done on 1 worker\(s\) — the volume is created; run later, on each:\n {2}node01 \(/);
      expect(out).toContain(`iscsiadm -m discovery -t sendtargets -p ${P2} -o new -o update`);
      expect(String(r.stderr)).toContain('node01 could not be told about it');
      // usable through data1 alone while data2 is frozen
      const usable = lab.must(
        'node01',
        `set -e
         iscsiadm -m node -T iqn.2016-04.fr.enssib:kfrz -p ${P1} --login >/dev/null
         for i in $(seq 1 30); do udevadm settle; m=$(multipath -ll | awk '/LIO-ORG,kfrz/ { print $1 }'); [ -n "$m" ] && multipath -ll "$m" | grep -q 'active ready running' && break; sleep 1; done
         mkdir -p /mnt/kfrz; mount /dev/mapper/$m /mnt/kfrz
         dd if=/dev/urandom of=/mnt/kfrz/blob bs=1M count=8 status=none; sync
         a=$(sha256sum /mnt/kfrz/blob | cut -d' ' -f1); echo 3 > /proc/sys/vm/drop_caches; b=$(sha256sum /mnt/kfrz/blob | cut -d' ' -f1)
         umount /mnt/kfrz; iscsiadm -m node -T iqn.2016-04.fr.enssib:kfrz -p ${P1} --logout >/dev/null
         [ "$a" = "$b" ] && echo "usable through data1: $(multipath -ll 2>/dev/null | grep -c kfrz || true) maps left"`,
        300_000,
      );
      expect(usable).toContain('usable through data1');
    } finally {
      if (frozen) process.kill(data2, 'SIGCONT');
    }
    // data2 is back; DRBD saw both Primaries go on alone: a split brain the tool refuses to work on
    const standalone = await lab.enssib(['volume', 'create', 'kfrz', '128M']);
    if (standalone.code !== 0) {
      expect(standalone.code).toBe(1);
      expect(standalone.stderr).toMatch(/DRBD is not ready for a volume change: nothing was changed[\s\S]*(StandAlone|not Connected|not UpToDate)/);
    }
    healSplitBrain();
    lab.waitDrbdReady();
    // once DRBD is in sync again, running the command again finishes the job (export on data2, discovery on node01)
    const again = await timed('re-run after thaw', () => lab.enssib(['volume', 'create', 'kfrz', '128M']));
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(lab.must('node01', 'iscsiadm -m node -T iqn.2016-04.fr.enssib:kfrz')).toContain('10.66.6.2');
    const del = await lab.enssib(['volume', 'delete', 'kfrz', '--yes', '--skip-pv-check']);
    expect(del.code, del.stdout + del.stderr).toBe(0);
  }, 1_800_000);
});
