import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt } from '../../support/cli.js';
import { kernelLab } from './lab.js';

/**
 * `enssib backup` on the kernel lab's real DRBD dual-primary pair, LVM, LIO
 * and node01's multipath: the dual-primary hazard (node01 writes through the
 * multipath device while the snapshot exists: the image is the state at
 * snapshot time, and both paths are back afterwards), the stream killed in the
 * middle, a snapshot left by a crash, then list, verify and prune on the
 * backups made. The tests run in order and share the volume.
 */
const lab = kernelLab();
const V = 'kbak';
const IQN = `iqn.2016-04.fr.enssib:${V}`;
const SNAP = `vg_cluster/${V}-enssib-snap`;
const DEST = `/srv/backup/${V}`;
const timings: Record<string, number> = {};

/** The multipath device of the volume on node01 (one map holding the target's disks). */
const DEV = `$(for d in $(iscsiadm -m session -P 3 2>/dev/null | awk -v t=${IQN} '/^Target: /{on=($2==t)} on && /Attached scsi disk/{print $4}'); do multipath -ll 2>/dev/null | awk -v d=$d '/ dm-[0-9]+ /{m=$1} $0 ~ " "d" " {print "/dev/mapper/"m; exit}'; done | head -n1)`;

function cleanup(): void {
  lab.sh('node01', `for p in 10.66.6.1:3260 10.66.6.2:3260; do iscsiadm -m node -T ${IQN} -p $p --logout >/dev/null 2>&1; done; iscsiadm -m node -T ${IQN} -o delete >/dev/null 2>&1; udevadm settle; multipath -F >/dev/null 2>&1; true`);
  for (const vm of ['data1', 'data2']) {
    lab.sh(vm, `[ -d /sys/kernel/config/target/iscsi/${IQN} ] && targetcli /iscsi delete ${IQN} >/dev/null; ls -d /sys/kernel/config/target/core/iblock_*/${V} >/dev/null 2>&1 && targetcli /backstores/block delete ${V} >/dev/null; targetcli saveconfig >/dev/null; true`);
  }
  lab.sh('data2', `lvs vg_cluster/${V} >/dev/null 2>&1 && lvchange -an vg_cluster/${V}; true`);
  lab.sh('data1', `lvs ${SNAP} >/dev/null 2>&1 && lvremove -y ${SNAP}; lvs vg_cluster/${V} >/dev/null 2>&1 && lvremove -y vg_cluster/${V}; rm -rf ${DEST} /run/enssib/volume-${V}.lock; true`);
}

const records = () => lab.must('data1', `ls ${DEST}/*.json 2>/dev/null | wc -l`).trim();
const leftovers = () => lab.must('data1', `lvs --noheadings -o lv_name vg_cluster | grep -c enssib-snap; ls -a ${DEST} | grep -c partial; true`).trim().split('\n');
const activePaths = () => Number(lab.must('node01', `d=${DEV}; multipath -ll "\${d#/dev/mapper/}" | grep -c 'active ready running'; true`).trim());

beforeAll(() => {
  assertBuilt();
  cleanup();
  lab.waitDrbdReady();
}, 900_000);

afterAll(() => {
  cleanup();
  process.stderr.write(`kernel lab backup timings (s): ${JSON.stringify(timings)}\n`);
}, 600_000);

describe('backup snapshot on real DRBD dual-primary, LVM, LIO and multipath', () => {
  let before = '';

  it('node01 has the volume on two paths with known data', async () => {
    const r = await lab.enssib(['volume', 'create', V, '128M', '--fs', 'none']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    lab.must('node01', `for p in 10.66.6.1:3260 10.66.6.2:3260; do iscsiadm -m node -T ${IQN} -p $p --login >/dev/null; done; udevadm settle; for i in $(seq 1 30); do d=${DEV}; [ -n "$d" ] && [ "$(multipath -ll "\${d#/dev/mapper/}" | grep -c 'active ready running')" = 2 ] && exit 0; sleep 1; done; multipath -ll; exit 1`);
    lab.must('node01', `head -c 128M /dev/urandom > /root/a.bin; head -c 8M /dev/urandom > /root/b.bin; dd if=/root/a.bin of=${DEV} bs=1M oflag=direct status=none`);
    before = lab.must('node01', `dd if=${DEV} bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1`).trim();
    expect(before).toMatch(/^[0-9a-f]{64}$/);
    expect(activePaths()).toBe(2);
  }, 900_000);

  it('the hazard: node01 writes through the multipath device while the snapshot exists; the image is the state at snapshot time; both paths are back', async () => {
    // The writer starts as soon as the snapshot exists and writes another pattern over the first 8 MiB, again and again, for 20 s
    // (8 MiB fits in the copy-on-write area of 20% of 128 MiB; more fills the snapshot, which fails the backup).
    const writer = (async () => {
      const seen = await lab.background('data1', `for i in $(seq 1 1200); do lvs ${SNAP} >/dev/null 2>&1 && exit 0; sleep 0.05; done; exit 1`);
      if (seen.code !== 0) return { code: seen.code, stdout: 'the snapshot never appeared' };
      return lab.background('node01', `end=$((SECONDS + 20)); n=0; while [ $SECONDS -lt $end ]; do dd if=/root/b.bin of=${DEV} bs=1M oflag=direct conv=notrunc status=none || exit 1; n=$((n + 1)); done; echo $n`);
    })();
    const t = Date.now();
    const r = await lab.enssib(['backup', 'snapshot', V]);
    timings.backup = (Date.now() - t) / 1000;
    const w = await writer;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // Progress without a terminal: plain lines with the bytes read of the volume's size; the one-line summary last.
    expect(r.stderr).toMatch(new RegExp(`\\[${V}\\] data1: copy the snapshot \\(zstd\\): \\S+ of 128M \\(\\d+%\\)`));
    expect(r.stdout.trim().split('\n').at(-1)).toBe('backup snapshot: 1 of 1 volume backed up');
    expect(w.code, w.stdout).toBe(0);
    expect(Number(w.stdout.trim())).toBeGreaterThan(0);
    const list = await lab.enssib(['backup', 'list', V, '-o', 'json']);
    expect(list.code, list.stderr).toBe(0);
    const backups = (JSON.parse(list.stdout) as { backups: { id: string; sizeBytes: number; snapshotFillPercent: number; sha256: string }[] }).backups;
    expect(backups).toHaveLength(1);
    const b = backups[0] as (typeof backups)[number];
    expect(b.sizeBytes).toBe(128 * 1024 * 1024);
    // Writes reached the origin while the snapshot existed (its copy-on-write area holds them), through data1 only.
    expect(b.snapshotFillPercent).toBeGreaterThan(0);
    const image = lab.must('data1', `zstd -dc ${DEST}/${b.id}.img.zst | sha256sum | cut -d' ' -f1; sha256sum ${DEST}/${b.id}.img.zst | cut -d' ' -f1`).trim().split('\n');
    expect(image[0]).toBe(before);
    expect(image[1]).toBe(b.sha256);
    // The data written during the backup is on the volume, and node01 has both paths again.
    const now = lab.must('node01', `dd if=${DEV} bs=1M count=8 iflag=direct status=none | sha256sum | cut -d' ' -f1; sha256sum < /root/b.bin | cut -d' ' -f1`).trim().split('\n');
    expect(now[0]).toBe(now[1]);
    expect(activePaths()).toBe(2);
    expect(leftovers()).toEqual(['0', '0']);
    expect(lab.must('data2', `lvs --noheadings -o lv_active vg_cluster/${V}; [ -d /sys/kernel/config/target/iscsi/${IQN} ] && echo exported`).trim().split(/\s+/)).toEqual(['active', 'exported']);
  }, 900_000);

  it('the stream killed in the middle: non-zero exit, no snapshot, nothing catalogued, both paths back; the next run succeeds', async () => {
    const n = records();
    const killer = lab.background('data1', `for i in $(seq 1 2400); do if pkill -KILL -x zstd; then echo killed; exit 0; fi; sleep 0.025; done; exit 1`);
    const r = await lab.enssib(['backup', 'snapshot', V]);
    const k = await killer;
    expect(k.stdout.trim()).toBe('killed');
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/copy the snapshot/);
    expect(records()).toBe(n);
    expect(leftovers()).toEqual(['0', '0']);
    expect(activePaths()).toBe(2);
    const again = await lab.enssib(['backup', 'snapshot', V]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(Number(records())).toBe(Number(n) + 1);
  }, 900_000);

  it('a snapshot left by a crashed run is removed by the next run', async () => {
    lab.must('data1', `lvcreate -q -y -s -n ${V}-enssib-snap -L 16M vg_cluster/${V} >/dev/null`);
    const r = await lab.enssib(['backup', 'snapshot', V]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/remove what an earlier backup of the volume left\s+data1\s+done/);
    expect(leftovers()).toEqual(['0', '0']);
    expect(activePaths()).toBe(2);
  }, 900_000);

  it('two volumes at once, one unknown: the other is backed up, the run is a partial failure (exit 3)', async () => {
    const n = Number(records());
    const r = await lab.enssib(['backup', 'snapshot', V, 'knosuch', '--concurrency', '2']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toMatch(/no volume "knosuch"/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('backup snapshot: 1 of 2 volumes backed up; failed: knosuch (failed)');
    expect(Number(records())).toBe(n + 1);
    expect(leftovers()).toEqual(['0', '0']);
    expect(activePaths()).toBe(2);
  }, 900_000);

  it('verify finds a changed image; prune keeps the newest of the day', async () => {
    const list = JSON.parse((await lab.enssib(['backup', 'list', '-o', 'json'])).stdout) as { backups: { id: string; volume: string }[] };
    const mine = list.backups.filter((b) => b.volume === V).map((b) => b.id);
    expect(mine.length).toBeGreaterThanOrEqual(2);
    const ok = await lab.enssib(['backup', 'verify', ...mine]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const first = mine[0] as string;
    lab.must('data1', `printf 'x' | dd of=${DEST}/${first}.img.zst bs=1 seek=100 conv=notrunc status=none`);
    const bad = await lab.enssib(['backup', 'verify', first]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${first}: MISMATCH`);
    const missing = await lab.enssib(['backup', 'verify', `${V}.20200101T000000Z`]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`no backup ${V}.20200101T000000Z in the catalogue`);
    const prune = await lab.enssib(['backup', 'prune', '--yes']);
    expect(prune.code, prune.stdout + prune.stderr).toBe(0);
    const left = (JSON.parse((await lab.enssib(['backup', 'list', V, '-o', 'json'])).stdout) as { backups: { id: string }[] }).backups.map((b) => b.id);
    const newest = mine.at(-1) as string;
    expect(left).toEqual([newest]);
    expect(lab.must('data1', `ls ${DEST}`).trim().split('\n')).toEqual([`${newest}.img.zst`, `${newest}.json`]);
  }, 900_000);
});
