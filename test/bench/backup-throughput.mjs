// Benchmark: `enssib backup snapshot` throughput against a raw
// `dd if=SNAPSHOT bs=4M | zstd -1 > FILE` on the metadata host, on the same
// volume in the same kernel-lab run. Target: enssib at least 80% of raw.
//
// The kernel lab (QEMU VMs, real LVM/DRBD/LIO): a volume of SIZE (default 256M)
// is filled on data1 with compressible data (base64 of random bytes, which zstd
// -1 shrinks to about 3/4), then, alternately, REPS times each (default 2):
//   raw:    lvcreate --snapshot, drop the page cache, time
//           `dd if=SNAP bs=4M | zstd -1 > FILE && sync FILE`, lvremove;
//   enssib: drop the page cache, `enssib backup snapshot` of the volume; its
//           copy time is the catalogue record's durationMs (zstd and fsync of
//           the image: the snapshot's life; the sha256 of the file is taken
//           after the snapshot's removal), its whole run is timed too.
// Both write to the backup destination's filesystem on data1. Prints MB/s of
// each (MB = 10^6 bytes of the volume read), the ratio, and the whole run's
// time; asserts nothing. The VMs are TCG-emulated with one vCPU each: the
// figures are the lab's, not a real server's (the ratio is what is compared).
//
//   npm run build && flock /tmp/enssib-lab.lock node test/bench/backup-throughput.mjs
// Environment: SIZE (e.g. 512M), REPS, ENSSIB_KERNEL_LAB_STATE (default /tmp/enssib-lab-kernel).
// The lab is left running (down.sh stops it); the volume and its backups are removed at the end.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { median, requireBuild, timeIt, ROOT } from './lib.mjs';

requireBuild();
const state = process.env.ENSSIB_KERNEL_LAB_STATE ?? '/tmp/enssib-lab-kernel';
const SIZE = process.env.SIZE ?? '256M';
const REPS = Number(process.env.REPS ?? 2);
const V = 'kbench';
const SNAP = `vg_cluster/${V}-rawbench`;

execFileSync('bash', [join(ROOT, 'test/lab/kernel/up.sh'), '--state', state], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 40 * 60_000 });

function sh(host, script) {
  const r = spawnSync('ssh', ['-F', join(state, 'ssh_config'), host, 'bash', '-s'], { input: script, encoding: 'utf8', timeout: 30 * 60_000 });
  if (r.status !== 0) throw new Error(`${host}: exit ${r.status}\n${script}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function enssib(args) {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/enssib.js'), '-i', join(state, 'inventory.yaml'), ...args], { encoding: 'utf8', timeout: 60 * 60_000 });
  if (r.status !== 0) throw new Error(`enssib ${args.join(' ')}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function cleanup() {
  for (const vm of ['data1', 'data2']) {
    sh(vm, `[ -d /sys/kernel/config/target/iscsi/iqn.2016-04.fr.enssib:${V} ] && targetcli /iscsi delete iqn.2016-04.fr.enssib:${V} >/dev/null; ls -d /sys/kernel/config/target/core/iblock_*/${V} >/dev/null 2>&1 && targetcli /backstores/block delete ${V} >/dev/null; true`);
  }
  sh('node01', `iscsiadm -m node -T iqn.2016-04.fr.enssib:${V} -o delete >/dev/null 2>&1; true`);
  sh('data2', `lvs vg_cluster/${V} >/dev/null 2>&1 && lvchange -an vg_cluster/${V}; true`);
  sh('data1', `lvs ${SNAP} >/dev/null 2>&1 && lvremove -y ${SNAP}; lvs vg_cluster/${V} >/dev/null 2>&1 && lvremove -y vg_cluster/${V}; rm -rf /srv/backup/${V} /srv/backup/rawbench.zst; true`);
}

cleanup();
enssib(['volume', 'create', V, SIZE, '--fs', 'none']);
const bytes = Number(sh('data1', `blockdev --getsize64 /dev/vg_cluster/${V}`).trim());
sh('data1', `head -c ${Math.ceil((bytes * 3) / 4)} /dev/urandom | base64 -w 0 | head -c ${bytes} | dd of=/dev/vg_cluster/${V} bs=4M iflag=fullblock oflag=direct status=none`);

const raw = [];
const mine = [];
const runs = [];
for (let i = 0; i < REPS; i++) {
  sh('data1', `lvcreate -q -y -s -n ${SNAP.split('/')[1]} -l 20%ORIGIN vg_cluster/${V} >/dev/null; sync; echo 3 > /proc/sys/vm/drop_caches`);
  const ms = Number(
    // A failed pipeline must not be timed as a fast one (sh throws on a non-zero exit).
    sh('data1', `set -o pipefail; mkdir -p /srv/backup; s=$(date +%s%3N); dd if=/dev/${SNAP} bs=4M status=none | zstd -1 -q > /srv/backup/rawbench.zst && sync -- /srv/backup/rawbench.zst || exit 1; e=$(date +%s%3N); echo $((e - s))`).trim(),
  );
  raw.push(ms);
  sh('data1', `lvremove -q -y ${SNAP} >/dev/null; rm -f /srv/backup/rawbench.zst; sync; echo 3 > /proc/sys/vm/drop_caches`);
  runs.push(await timeIt(async () => enssib(['backup', 'snapshot', V])));
  const list = JSON.parse(enssib(['backup', 'list', V, '-o', 'json'])).backups;
  const rec = list.at(-1);
  mine.push(rec.durationMs);
  sh('data1', `rm -f /srv/backup/${V}/*; sync`);
}
cleanup();

const mbps = (ms) => bytes / 1e6 / (ms / 1000);
const r = mbps(median(raw));
const e = mbps(median(mine));
console.log(`volume ${(bytes / 2 ** 20).toFixed(0)} MiB, ${REPS} run(s) each, medians`);
console.log(`raw  dd bs=4M | zstd -1 > FILE (+ sync): ${r.toFixed(1)} MB/s  (${raw.map((x) => (x / 1000).toFixed(1)).join(', ')} s)`);
console.log(`enssib backup snapshot, copy:           ${e.toFixed(1)} MB/s  (${mine.map((x) => (x / 1000).toFixed(1)).join(', ')} s)`);
console.log(`ratio enssib / raw: ${((e / r) * 100).toFixed(0)}% (target >= 80%)`);
console.log(`enssib backup snapshot, whole run (lock, offline path, snapshot, copy, sha256, cleanup, both paths back): ${(median(runs) / 1000).toFixed(1)} s`);
