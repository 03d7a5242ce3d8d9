// Benchmark: `enssib node bootstrap` on a bootstrapped node takes at most 20% of
// the first run's time. Runs the kernel-lab test that bootstraps node01 twice
// (test/integration/kernel/node-bootstrap.test.ts: the real OS phases on the VM,
// kubeadm/kubelet and the API server as stand-ins; node01 restored at the end)
// and prints the two durations it measured and their ratio. Asserts nothing.
//
// Prerequisites: root, qemu (the kernel lab boots if it is not up; ENSSIB_KEEP_LAB=1
// keeps it up afterwards). About 10 minutes under TCG.
//
//   npm run build && flock /tmp/enssib-lab.lock node test/bench/node-bootstrap.mjs
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { requireBuild, ROOT } from './lib.mjs';

requireBuild();
const r = spawnSync('npx', ['vitest', 'run', '--project', 'kernel', 'test/integration/kernel/node-bootstrap.test.ts'], {
  cwd: ROOT,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, NO_COLOR: '1' },
  maxBuffer: 64 * 1024 * 1024,
});
const out = `${r.stdout}\n${r.stderr}`;
const m = /node bootstrap: first run ([\d.]+) s, second ([\d.]+) s/.exec(out);
if (r.status !== 0 || !m) {
  process.stderr.write(out.slice(-4000));
  console.error(`the test ${join('test/integration/kernel', 'node-bootstrap.test.ts')} failed (exit ${r.status}): no figures`);
  process.exit(1);
}
const [first, second] = [Number(m[1]), Number(m[2])];
console.log(`node bootstrap node01 (kernel lab, TCG): first run ${first.toFixed(1)} s, second run ${second.toFixed(1)} s`);
console.log(`second / first = ${((100 * second) / first).toFixed(1)} % (target: at most 20 %)`);
