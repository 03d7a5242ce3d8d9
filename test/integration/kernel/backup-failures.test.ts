import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, enssib } from '../../support/cli.js';
import { kernelLab } from './lab.js';

/**
 * `enssib backup snapshot` failures on the kernel lab's real LVM, DRBD, LIO and
 * multipath: a tiny copy-on-write area that heavy writes through node01 fill
 * during the copy (the snapshot becomes invalid), and a destination that is
 * full (a 16 MiB tmpfs on data1). Each time: the backup is reported failed,
 * nothing is catalogued, no partial file and no snapshot are left, and node01
 * has both paths again. Each case uses its own inventory (a copy of the lab's
 * with another backup section).
 */
const lab = kernelLab();
const V = 'kfail';
const IQN = `iqn.2016-04.fr.enssib:${V}`;
const TINY = '/srv/backup-tiny';
const FULL = '/srv/backup-full';

const DEV = `$(for d in $(iscsiadm -m session -P 3 2>/dev/null | awk -v t=${IQN} '/^Target: /{on=($2==t)} on && /Attached scsi disk/{print $4}'); do multipath -ll 2>/dev/null | awk -v d=$d '/ dm-[0-9]+ /{m=$1} $0 ~ " "d" " {print "/dev/mapper/"m; exit}'; done | head -n1)`;

/** A copy of the lab's inventory with `backup:` replaced. */
function inventoryWith(name: string, backup: string): string {
  const text = readFileSync(lab.inventory, 'utf8').replace(/^backup: .*$/m, `backup: ${backup}`);
  const file = join(lab.state, `inventory-${name}.yaml`);
  writeFileSync(file, text);
  return file;
}

const run = (inventory: string, args: string[]) => enssib(['-i', inventory, ...args], { timeoutMs: 900_000 });

function cleanup(): void {
  lab.sh('node01', `for p in 10.66.6.1:3260 10.66.6.2:3260; do iscsiadm -m node -T ${IQN} -p $p --logout >/dev/null 2>&1; done; iscsiadm -m node -T ${IQN} -o delete >/dev/null 2>&1; udevadm settle; multipath -F >/dev/null 2>&1; true`);
  for (const vm of ['data1', 'data2']) {
    lab.sh(vm, `[ -d /sys/kernel/config/target/iscsi/${IQN} ] && targetcli /iscsi delete ${IQN} >/dev/null; ls -d /sys/kernel/config/target/core/iblock_*/${V} >/dev/null 2>&1 && targetcli /backstores/block delete ${V} >/dev/null; targetcli saveconfig >/dev/null; true`);
  }
  lab.sh('data2', `lvs vg_cluster/${V} >/dev/null 2>&1 && lvchange -an vg_cluster/${V}; true`);
  lab.sh('data1', `lvs vg_cluster/${V}-enssib-snap >/dev/null 2>&1 && lvremove -y vg_cluster/${V}-enssib-snap; lvs vg_cluster/${V} >/dev/null 2>&1 && lvremove -y vg_cluster/${V}; mountpoint -q ${FULL} && umount ${FULL}; rm -rf ${TINY} ${FULL} /run/enssib/volume-${V}.lock; true`);
}

/** What a failed backup must not leave: [snapshots of the volume, partial files, records] on data1. */
const left = (dest: string) => lab.must('data1', `lvs --noheadings -o lv_name vg_cluster | grep -c ${V}-enssib-snap; ls -a ${dest}/${V} 2>/dev/null | grep -c partial; ls ${dest}/${V}/*.json 2>/dev/null | wc -l; true`).trim().split('\n');
const activePaths = () => Number(lab.must('node01', `d=${DEV}; multipath -ll "\${d#/dev/mapper/}" | grep -c 'active ready running'; true`).trim());

beforeAll(async () => {
  assertBuilt();
  cleanup();
  lab.waitDrbdReady();
  const r = await lab.enssib(['volume', 'create', V, '128M', '--fs', 'none']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  lab.must('node01', `for p in 10.66.6.1:3260 10.66.6.2:3260; do iscsiadm -m node -T ${IQN} -p $p --login >/dev/null; done; udevadm settle; for i in $(seq 1 30); do d=${DEV}; [ -n "$d" ] && [ "$(multipath -ll "\${d#/dev/mapper/}" | grep -c 'active ready running')" = 2 ] && exit 0; sleep 1; done; multipath -ll; exit 1`);
  lab.must('node01', `head -c 128M /dev/urandom > /root/f.bin; dd if=/root/f.bin of=${DEV} bs=1M oflag=direct status=none`);
}, 900_000);

afterAll(() => cleanup(), 600_000);

describe('backup snapshot failures on real LVM, DRBD, LIO and multipath', () => {
  it('a tiny copy-on-write area and heavy writes during the copy: snapshot invalid, backup failed, snapshot removed, nothing catalogued', async () => {
    const inv = inventoryWith('tiny', `{ destination: ${TINY}, snapshotSize: 4M, retention: { daily: 7 } }`);
    // As soon as the snapshot exists, node01 rewrites 64 MiB of the volume: far more than the 4 MiB copy-on-write area.
    const writer = (async () => {
      const seen = await lab.background('data1', `for i in $(seq 1 2400); do lvs vg_cluster/${V}-enssib-snap >/dev/null 2>&1 && exit 0; sleep 0.025; done; exit 1`);
      if (seen.code !== 0) return { code: seen.code, stdout: 'the snapshot never appeared' };
      return lab.background('node01', `head -c 64M /root/f.bin | dd of=${DEV} bs=1M oflag=direct status=none seek=32 && echo wrote`);
    })();
    const r = await run(inv, ['backup', 'snapshot', V]);
    const w = await writer;
    expect(w.stdout.trim(), 'node01 wrote during the backup').toBe('wrote');
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/invalid|full|Input\/output error|read error/i);
    expect(left(TINY)).toEqual(['0', '0', '0']);
    expect(activePaths()).toBe(2);
  }, 900_000);

  it('a full destination: clear failure, no partial file, nothing catalogued, snapshot removed', async () => {
    const inv = inventoryWith('full', `{ destination: ${FULL}, retention: { daily: 7 } }`);
    lab.must('data1', `mkdir -p ${FULL} && mount -t tmpfs -o size=16M tmpfs ${FULL}`);
    const r = await run(inv, ['backup', 'snapshot', V]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/No space left on device/);
    expect(left(FULL)).toEqual(['0', '0', '0']);
    expect(lab.must('data1', `ls -A ${FULL}/${V} | wc -l`).trim()).toBe('0');
    expect(activePaths()).toBe(2);
  }, 900_000);
});
