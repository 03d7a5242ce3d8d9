// Benchmark: the CPU one call of the hosts-lab storage stand-in
// (test/integration/hosts/stand-ins/storage.sh) takes, per tool, against a plain
// `sleep` of the same delay. Target: under 10 ms per call, so that the fan-out
// benchmarks measure enssib and ssh, not the stand-in. Prints the figures; asserts nothing.
//
// Runs in a throw-away container of the hosts-lab image (docker run --rm; the lab's
// own containers are not touched), with the stand-in's delay at 0.2 s as in the
// benchmarks. CPU = user + system time of the calls and what they start (bash
// `times`, children line), divided by the number of calls.
//
//   flock /tmp/enssib-lab.lock node test/bench/stand-in-cpu.mjs      (N=20 calls per tool by default)
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './lib.mjs';

const N = Number(process.env.N ?? 20);
const DELAY = '0.2';
execFileSync('bash', [join(ROOT, 'test/lab/hosts/ensure-docker.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
const tag = execFileSync('bash', [join(ROOT, 'test/lab/hosts/build-image.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').pop();

const dir = mkdtempSync(join(tmpdir(), 'enssib-bench-stand-in-'));
chmodSync(dir, 0o755);
copyFileSync(join(ROOT, 'test/integration/hosts/stand-ins/storage.sh'), join(dir, 'enssib-storage-stand-in'));
chmodSync(join(dir, 'enssib-storage-stand-in'), 0o755);
const TOOLS = ['drbdadm', 'vgs', 'pvs', 'lvs', 'lvcreate', 'blkid', 'wipefs', 'mkfs.ext4', 'scstadmin', 'iscsiadm', 'multipath', 'dmsetup'];
for (const t of TOOLS) symlinkSync('enssib-storage-stand-in', join(dir, t));
writeFileSync(join(dir, 'stand-in.conf'), `DELAY=${DELAY}\n`);

// Each case: a setup (not counted) and the call measured N times, N at once (the delays overlap).
const cases = [
  ['sleep (reference)', ':', `sleep ${DELAY}`],
  ['drbdadm role', ':', 'drbdadm role r0'],
  ['vgs (2 LVs)', 'lvcreate --yes --name a --size 1g vg_cluster; lvcreate --yes --name b --size 2g vg_cluster', 'vgs --reportformat json vg_cluster'],
  ['lvs (2 LVs)', ':', 'lvs --reportformat json vg_cluster'],
  ['lvcreate', ':', 'lvcreate --yes --name "v$i" --size 1g --addtag enssib vg_cluster'],
  ['pvs', ':', 'pvs --noheadings -o pv_name --select vg_name=vg_cluster'],
  ['blkid', 'mkfs.ext4 /dev/vg_cluster/a', 'blkid -p -- /dev/vg_cluster/a'],
  ['wipefs -n', ':', 'wipefs -n -- /dev/vg_cluster/a'],
  ['scstadmin -write_config', ':', 'scstadmin -noprompt -write_config "/tmp/w$i"'],
  ['iscsiadm discovery', ':', 'iscsiadm -m discovery -t st -p 10.66.6.1:3260'],
  ['iscsiadm -m node -o show', ':', 'iscsiadm -m node -T "iqn.x:v$i" -p 10.66.6.1:3260 -o show'],
  ['iscsiadm -m node', 'iscsiadm -m node -T iqn.x:v -p 10.66.6.1:3260 --login; iscsiadm -m node -T iqn.x:v1 -p 10.66.6.1:3260 --login', 'iscsiadm -m node'],
  ['iscsiadm -m session -P 3', ':', 'iscsiadm -m session -P 3'],
  ['multipath -ll', ':', 'multipath -ll'],
  ['dmsetup info NAME', ':', 'dmsetup info 36001405000000000000000000000000'],
];
const script = cases
  .map(([label, setup, call]) => `{ ${setup}; } >/dev/null 2>&1; bash -c 'for ((i = 0; i < ${N}; i++)); do ${call} >/dev/null 2>&1 & done; wait; times' | sed -n 2p | sed 's|^|${label}\\t|'`)
  .join('\n');
let out;
try {
  out = execFileSync('docker', ['run', '--rm', '--volume', `${dir}:/opt/enssib-stand-ins/bin:ro`, tag, 'bash', '-c', script], { encoding: 'utf8' });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const seconds = (s) => {
  const m = /^(\d+)m([\d.]+)s$/.exec(s);
  return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
};
console.log(`hosts-lab storage stand-in: CPU per call (user + system, ${N} calls each, delay ${DELAY} s; load ${execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).split(' ').slice(0, 3).join(' ')})`);
let worst = 0;
for (const line of out.trim().split('\n')) {
  const [label, times] = line.split('\t');
  const [user, sys] = times.trim().split(/\s+/).map(seconds);
  const ms = ((user + sys) / N) * 1000;
  if (!label.startsWith('sleep')) worst = Math.max(worst, ms);
  console.log(`  ${label.padEnd(26)} ${ms.toFixed(1).padStart(6)} ms`);
}
console.log(`  worst stand-in call        ${worst.toFixed(1).padStart(6)} ms (target < 10 ms) ${worst < 10 ? 'OK' : 'OVER TARGET'}`);
