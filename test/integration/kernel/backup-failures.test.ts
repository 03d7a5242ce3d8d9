import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, enssib } from '../../support/cli.js';
import { kernelLab } from './lab.js';

/**
 * `enssib backup snapshot` failures on the kernel lab's real LVM, DRBD, LIO and
 * multipath: a tiny copy-on-write area that node01's writes fill during the
 * copy (the snapshot becomes invalid), and a destination that is full (a
 * 16 MiB tmpfs on data1). Each time: the backup is reported failed, nothing is
 * catalogued, no partial file and no snapshot are left, and node01 has both
 * paths again. Each case uses its own inventory (a copy of the lab's with
 * another backup section).
 */
const lab = kernelLab();
const V = 'kbfail';
const IQN = `iqn.2016-04.fr.enssib:${V}`;
const SNAP = `vg_cluster/${V}-enssib-snap`;
const TINY = '/srv/backup-tiny';
const FULL = '/srv/backup-full';
/** On node01: the volume's data (random: zstd does not shrink it), and the file that stops the writer. */
const DATA = `/root/${V}.bin`;
const STOP = `/run/${V}-writer.stop`;

/** The multipath device of the volume on node01 (one map holding the target's disks). */
const DEV = `$(for d in $(iscsiadm -m session -P 3 2>/dev/null | awk -v t=${IQN} '/^Target: /{on=($2==t)} on && /Attached scsi disk/{print $4}'); do multipath -ll 2>/dev/null | awk -v d=$d '/ dm-[0-9]+ /{m=$1} $0 ~ " "d" " {print "/dev/mapper/"m; exit}'; done | head -n1)`;

/** A copy of the lab's inventory with `backup:` replaced (beside it: its relative paths still hold). */
function inventoryWith(name: string, backup: string): string {
  const text = readFileSync(lab.inventory, 'utf8');
  if (!/^backup: .*$/m.test(text)) throw new Error(`${lab.inventory}: no one-line backup section to replace`);
  const file = join(lab.state, `inventory-${name}.yaml`);
  writeFileSync(file, text.replace(/^backup: .*$/m, `backup: ${backup}`));
  return file;
}

const run = (inventory: string, args: string[]) => enssib(['-i', inventory, ...args], { timeoutMs: 900_000 });

function cleanup(): void {
  lab.sh('node01', `touch ${STOP}; for p in 10.66.6.1:3260 10.66.6.2:3260; do iscsiadm -m node -T ${IQN} -p $p --logout >/dev/null 2>&1; done; iscsiadm -m node -T ${IQN} -o delete >/dev/null 2>&1; udevadm settle; multipath -F >/dev/null 2>&1; rm -f ${DATA} ${STOP}; true`);
  for (const vm of ['data1', 'data2']) {
    lab.sh(vm, `[ -d /sys/kernel/config/target/iscsi/${IQN} ] && targetcli /iscsi delete ${IQN} >/dev/null; ls -d /sys/kernel/config/target/core/iblock_*/${V} >/dev/null 2>&1 && targetcli /backstores/block delete ${V} >/dev/null; targetcli saveconfig >/dev/null; true`);
  }
  lab.sh('data2', `lvs vg_cluster/${V} >/dev/null 2>&1 && lvchange -an vg_cluster/${V}; true`);
  lab.sh('data1', `lvs ${SNAP} >/dev/null 2>&1 && lvremove -y ${SNAP}; lvs vg_cluster/${V} >/dev/null 2>&1 && lvremove -y vg_cluster/${V}; mountpoint -q ${FULL} && umount ${FULL}; rm -rf ${TINY} ${FULL} /run/enssib/volume-${V}.lock; true`);
}

/** What a failed backup must not leave on data1: [snapshots of the volume, partial files, catalogue records]. */
const left = (dest: string) => lab.must('data1', `lvs --noheadings -o lv_name vg_cluster | grep -c ${V}-enssib-snap; ls -a ${dest}/${V} 2>/dev/null | grep -c partial; ls ${dest}/${V}/*.json 2>/dev/null | wc -l; true`).trim().split('\n');
const activePaths = () => Number(lab.must('node01', `d=${DEV}; multipath -ll "\${d#/dev/mapper/}" | grep -c 'active ready running'; true`).trim());

beforeAll(async () => {
  assertBuilt();
  cleanup();
  lab.waitDrbdReady();
  const r = await lab.enssib(['volume', 'create', V, '128M', '--fs', 'none']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  lab.must('node01', `for p in 10.66.6.1:3260 10.66.6.2:3260; do iscsiadm -m node -T ${IQN} -p $p --login >/dev/null; done; udevadm settle; for i in $(seq 1 30); do d=${DEV}; [ -n "$d" ] && [ "$(multipath -ll "\${d#/dev/mapper/}" | grep -c 'active ready running')" = 2 ] && exit 0; sleep 1; done; multipath -ll; exit 1`);
  lab.must('node01', `head -c 128M /dev/urandom > ${DATA}; dd if=${DATA} of=${DEV} bs=1M oflag=direct status=none`);
}, 900_000);

afterAll(() => cleanup(), 600_000);

describe('backup snapshot failures on real LVM, DRBD, LIO and multipath', () => {
  it('a tiny copy-on-write area and writes during the copy: snapshot invalid, backup failed, snapshot removed, nothing catalogued, both paths back', async () => {
    const inv = inventoryWith('tiny', `{ destination: ${TINY}, snapshotSize: 4M, retention: { daily: 7 } }`);
    // node01 writes through the multipath device from before the backup until it ends (bounded: 4 MiB at a time over
    // 64 MiB of the volume, at most 300 s): once the snapshot exists, the first few MiB fill its 4 MiB copy-on-write
    // area, long before the copy of 128 MiB is through. It prints the MiB it wrote.
    lab.must('node01', `rm -f ${STOP}`);
    const writer = lab.background('node01', `d=${DEV}; [ -n "$d" ] || exit 1; n=0; while [ ! -e ${STOP} ] && [ $SECONDS -lt 300 ]; do dd if=${DATA} of="$d" bs=1M count=4 seek=$((32 + n % 64)) oflag=direct conv=notrunc status=none || exit 1; n=$((n + 4)); done; echo $n`);
    const r = await run(inv, ['backup', 'snapshot', V]);
    lab.must('node01', `touch ${STOP}`);
    const w = await writer;
    expect(w.code, w.stdout).toBe(0);
    expect(Number(w.stdout.trim())).toBeGreaterThan(4);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/snapshot \S+ (became|had become) invalid/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(`backup snapshot: 0 of 1 volume backed up; failed: ${V} (failed)`);
    expect(left(TINY)).toEqual(['0', '0', '0']);
    expect(activePaths()).toBe(2);
  }, 900_000);

  it('a full destination: clear failure, no partial file, nothing catalogued, snapshot removed, both paths back', async () => {
    const inv = inventoryWith('full', `{ destination: ${FULL}, retention: { daily: 7 } }`);
    lab.must('data1', `mkdir -p ${FULL} && mount -t tmpfs -o size=16M tmpfs ${FULL}`);
    const r = await run(inv, ['backup', 'snapshot', V]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/No space left on device/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(`backup snapshot: 0 of 1 volume backed up; failed: ${V} (failed)`);
    expect(left(FULL)).toEqual(['0', '0', '0']);
    expect(lab.must('data1', `ls -A ${FULL}/${V} | wc -l`).trim()).toBe('0');
    expect(activePaths()).toBe(2);
  }, 900_000);
});
