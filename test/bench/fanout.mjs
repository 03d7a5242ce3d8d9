// One step on 20 hosts vs the same step on 1 host (target: at most 1.5x).
// Each step runs a real remote command that takes 0.2 s on the host (a stand-in
// binary that sleeps), over real ssh to 20 hosts-lab containers.
// This takes over the hosts lab (it replaces its containers) and stops it at the end.
import { mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { hostsLabDown, hostsLabUp, median, requireBuild, timeIt, ROOT } from './lib.mjs';

requireBuild();
const { loadInventory } = await import(join(ROOT, 'dist/inventory/load.js'));
const { sshPool } = await import(join(ROOT, 'dist/remote/pool.js'));
const { runPlan } = await import(join(ROOT, 'dist/engine/runner.js'));

const state = process.env.STATE ?? '/tmp/enssib-bench-hosts';
const file = hostsLabUp(state, ['--workers', '18']);
const standIns = join(state, 'stand-ins', 'bin');
mkdirSync(standIns, { recursive: true });
writeFileSync(join(standIns, 'enssib-bench-step'), '#!/bin/sh\nsleep 0.2\n');
chmodSync(join(standIns, 'enssib-bench-step'), 0o755);

const inv = loadInventory({ path: file, source: '--inventory' }, {});
const all = inv.hosts.map((h) => h.name);
const pool = sshPool(inv);
const plan = (hosts) => ({ title: 'bench', mutating: false, phases: [{ title: 'step', hosts, plan: () => [{ kind: 'command', argv: ['enssib-bench-step'] }] }] });
const once = async (hosts) => {
  const r = await runPlan(plan(hosts), { mode: 'apply', concurrency: 20, hosts: pool });
  if (r.exitCode !== 0) throw new Error(JSON.stringify(r.phases, null, 2));
};
// Warm up: open the shared connection and the session to every host, as a run does on its first command.
await once(all);
const one = [];
const twenty = [];
for (let i = 0; i < 7; i++) {
  one.push(await timeIt(() => once([all[0]])));
  twenty.push(await timeIt(() => once(all)));
}
await pool.closeAll();
if (!process.env.KEEP) hostsLabDown(state);
const a = median(one);
const b = median(twenty);
console.log(`1 host:    median ${a.toFixed(0)} ms`);
console.log(`${all.length} hosts:  median ${b.toFixed(0)} ms`);
console.log(`ratio:     ${(b / a).toFixed(2)}x (target <= 1.5x)`);
