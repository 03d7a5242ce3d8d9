// Benchmark: the worker phase of `enssib volume create` (discovery of the new
// target on both portals, on every worker in parallel) on 1, 3 and 20 workers.
// Targets: 3 workers at most 1.3x the time of 1 worker; 20 workers at most 1.5x.
//
// Real ssh to hosts-lab containers (up.sh --workers 20: data1, data2, node01..node20);
// the storage tools are the stand-ins of the hosts tests, each call taking 0.2 s
// (per worker: `iscsiadm -m node`, then discovery + record check on both portals =
// 5 calls = 1 s, in 3 ssh commands). Measured inside a real `volume create` (where
// the workers' ssh connections open in the background while the storage servers
// work), and, for reference, the phase alone from cold connections, and plain
// OpenSSH running the same commands over open masters (no enssib): once as enssib
// does (3 ssh commands per worker), once joined into one ssh command per worker.
// Prints the figures; asserts nothing.
// Takes over the hosts lab (replaces its containers) and stops it at the end (KEEP=1 keeps it).
//
//   npm run build && node test/bench/volume-workers.mjs
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hostsLabDown, hostsLabUp, installStorageStandIns, median, requireBuild, timeIt, ROOT } from './lib.mjs';

requireBuild();
const { loadInventory } = await import(join(ROOT, 'dist/inventory/load.js'));
const { sshPool } = await import(join(ROOT, 'dist/remote/pool.js'));
const { runPlan } = await import(join(ROOT, 'dist/engine/runner.js'));
const { volumeSite } = await import(join(ROOT, 'dist/storage/volume.js'));
const { createPlan, PHASE_DISCOVERY } = await import(join(ROOT, 'dist/storage/volume-create.js'));
const { newIdentity } = await import(join(ROOT, 'dist/storage/identity.js'));
const { lockOwner } = await import(join(ROOT, 'dist/storage/lock.js'));
const { quote } = await import(join(ROOT, 'dist/remote/quote.js'));
const exec = promisify(execFile);

const state = process.env.STATE ?? '/tmp/enssib-bench-volume';
const file = hostsLabUp(state, ['--workers', '20']);
installStorageStandIns(state, 0.2);
const containers = JSON.parse(readFileSync(join(state, 'hosts.json'), 'utf8'));

const inv = loadInventory({ path: file, source: '--inventory' }, {});
const site = volumeSite(inv);
const workers = site.workers;
if (workers.length !== 20) throw new Error(`expected 20 workers, got ${workers.length}`);

const resetAll = () => {
  for (const c of containers) execFileSync('docker', ['exec', c.container, 'sh', '-c', 'rm -rf /var/lib/enssib-stand-in /etc/scst.conf /run/enssib/storage.lock']);
};
const resetWorkers = () => {
  for (const c of containers.filter((h) => h.name.startsWith('node'))) execFileSync('docker', ['exec', c.container, 'rm', '-rf', '/var/lib/enssib-stand-in']);
};

/** The lab inventory with only the first n workers. */
const inventoryWith = (n) => {
  const keep = new Set(workers.slice(0, n));
  const text = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => {
      const m = /name: (node\d+),/.exec(l);
      return !m || keep.has(m[1]);
    })
    .join('\n');
  const f = join(state, `inventory-${n}.yaml`);
  writeFileSync(f, text);
  return f;
};

/** 1. The worker phase inside a real `volume create` (CLI, -o json): the phase's wall time is its slowest worker (all start at once). */
let serial = 0;
const inRun = (n) => {
  resetAll();
  const out = execFileSync(process.execPath, [join(ROOT, 'bin/enssib.js'), '-i', inventoryWith(n), '-o', 'json', 'volume', 'create', `bench${serial++}`, '1G'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', CI: '1' } });
  const doc = JSON.parse(out);
  const phase = doc.phases.find((p) => p.title === PHASE_DISCOVERY);
  if (doc.exitCode !== 0 || phase.hosts.length !== n || phase.hosts.some((h) => h.status !== 'done')) throw new Error(out);
  return { worker: Math.max(...phase.hosts.map((h) => h.durationMs)), total: doc.durationMs };
};

/** 2. The same phase alone, from cold connections (no earlier phase to overlap the ssh set-up with). */
const phaseFor = (subset) => {
  const plan = createPlan({ ...site, workers: subset }, { name: 'bench', sizeBytes: 1024 ** 3, fs: 'ext4', verifyOn: null, pv: false, keepOnFailure: false, lockWaitS: 0, workerConcurrency: 32 }, { identity: newIdentity(), owner: lockOwner(['bench']) });
  return plan.phases.find((p) => p.title === PHASE_DISCOVERY);
};
const alone = async (subset) => {
  resetWorkers();
  const pool = sshPool(inv);
  try {
    return await timeIt(async () => {
      const r = await runPlan({ title: 'bench', mutating: false, phases: [phaseFor(subset)] }, { mode: 'apply', concurrency: 10, hosts: pool });
      if (r.exitCode !== 0 || r.phases[0].hosts.some((h) => h.status !== 'done')) throw new Error(JSON.stringify(r.phases, null, 2));
    });
  } finally {
    await pool.closeAll();
  }
};

/**
 * 3. Plain OpenSSH, no enssib: a master per worker opened first (not timed), then on every worker at once
 * the phase's commands as enssib runs them — the node-record read, then each portal's discovery —
 * either as separate ssh commands (`joined` false: enssib's round trips) or as one.
 */
const sshDir = join(state, 'bench-cp');
mkdirSync(sshDir, { recursive: true });
const sshOpts = (h) => ['-F', join(state, 'ssh_config'), '-o', `ControlPath=${sshDir}/${h}`];
const plainSsh = async (subset, joined) => {
  resetWorkers();
  const phase = phaseFor(subset);
  const commands = (h) => [...phase.checks(h), ...phase.plan(h, null, { values: new Map() }).map((a) => a.argv)].map((argv) => quote(argv));
  await Promise.all(subset.map((h) => exec('ssh', [...sshOpts(h), '-o', 'ControlMaster=yes', '-o', 'ControlPersist=yes', '-fN', h])));
  try {
    return await timeIt(() =>
      Promise.all(
        subset.map(async (h) => {
          const [probe, ...discover] = commands(h); // one read: the phase's probes are one command
          const read = `${probe} || [ $? = 21 ]`; // 21: no records yet, as enssib's probe takes it
          if (joined) return exec('ssh', [...sshOpts(h), h, [`{ ${read}; } >/dev/null`, ...discover].join(' && ')]);
          await exec('ssh', [...sshOpts(h), h, read]);
          for (const d of discover) await exec('ssh', [...sshOpts(h), h, d]);
        }),
      ),
    );
  } finally {
    await Promise.all(subset.map((h) => exec('ssh', [...sshOpts(h), '-O', 'exit', h]).catch(() => undefined)));
  }
};

const sizes = [1, 3, 20];
const runs = Object.fromEntries(sizes.map((n) => [n, []]));
const totals = Object.fromEntries(sizes.map((n) => [n, []]));
const cold = Object.fromEntries(sizes.map((n) => [n, []]));
const plain = Object.fromEntries(sizes.map((n) => [n, []]));
const plainJoined = Object.fromEntries(sizes.map((n) => [n, []]));
inRun(1); // warm the containers' caches
for (let i = 0; i < 5; i++) {
  for (const n of sizes) {
    const r = inRun(n);
    runs[n].push(r.worker);
    totals[n].push(r.total);
    cold[n].push(await alone(workers.slice(0, n)));
    plain[n].push(await plainSsh(workers.slice(0, n), false));
    plainJoined[n].push(await plainSsh(workers.slice(0, n), true));
  }
}
if (!process.env.KEEP) hostsLabDown(state);
const m = Object.fromEntries(sizes.map((n) => [n, median(runs[n])]));
const c = Object.fromEntries(sizes.map((n) => [n, median(cold[n])]));
console.log('worker phase of `volume create` (discovery on both portals; 3 ssh commands, 5 stand-in calls of 0.2 s per worker):');
for (const n of sizes) console.log(`  ${String(n).padStart(2)} worker(s): median of 5 ${m[n].toFixed(0)} ms  (runs: ${runs[n].map((x) => x.toFixed(0)).join(', ')}; whole create ${median(totals[n]).toFixed(0)} ms)`);
console.log(`  ratio  3/1: ${(m[3] / m[1]).toFixed(2)}x (target <= 1.3x) ${m[3] / m[1] <= 1.3 ? 'OK' : 'OVER TARGET'}`);
console.log(`  ratio 20/1: ${(m[20] / m[1]).toFixed(2)}x (target <= 1.5x) ${m[20] / m[1] <= 1.5 ? 'OK' : 'OVER TARGET'}`);
console.log('the same phase alone, from cold ssh connections (nothing earlier to overlap their set-up with):');
for (const n of sizes) console.log(`  ${String(n).padStart(2)} worker(s): median of 5 ${c[n].toFixed(0)} ms`);
console.log(`  ratios 3/1 ${(c[3] / c[1]).toFixed(2)}x, 20/1 ${(c[20] / c[1]).toFixed(2)}x`);
for (const [title, xs] of [
  ['plain OpenSSH, no enssib, the same 3 ssh commands per worker over open masters:', plain],
  ['plain OpenSSH, no enssib, the same commands joined into 1 ssh command per worker:', plainJoined],
]) {
  const p = Object.fromEntries(sizes.map((n) => [n, median(xs[n])]));
  console.log(title);
  console.log(`  ${sizes.map((n) => `${n} worker(s) ${p[n].toFixed(0)} ms`).join(', ')} (medians of 5); ratios 3/1 ${(p[3] / p[1]).toFixed(2)}x, 20/1 ${(p[20] / p[1]).toFixed(2)}x`);
}
