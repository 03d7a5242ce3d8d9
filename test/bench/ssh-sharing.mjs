// 50 sequential small commands to one host: with connection sharing vs a new
// ssh connection each time (target: at least 5x faster with sharing).
import { join } from 'node:path';
import { hostsLabDown, hostsLabUp, requireBuild, timeIt, ROOT } from './lib.mjs';

requireBuild();
const { loadInventory } = await import(join(ROOT, 'dist/inventory/load.js'));
const { SshHost } = await import(join(ROOT, 'dist/remote/ssh.js'));

const state = process.env.STATE ?? '/tmp/enssib-bench-hosts';
const file = hostsLabUp(state, ['--hosts', 'data1,data2,node01']);
const inv = loadInventory({ path: file, source: '--inventory' }, {});
const N = 50;
const shared = new SshHost(inv.ssh('node01'));
await shared.close();
const withSharing = await timeIt(async () => {
  for (let i = 0; i < N; i++) await shared.run(['true']);
});
await shared.close();
const fresh = new SshHost(inv.ssh('node01'), { share: false });
const without = await timeIt(async () => {
  for (let i = 0; i < N; i++) await fresh.run(['true']);
});
if (!process.env.KEEP) hostsLabDown(state);
console.log(`${N} commands, shared connection:  ${withSharing.toFixed(0)} ms (${(withSharing / N).toFixed(1)} ms each)`);
console.log(`${N} commands, new connection each: ${without.toFixed(0)} ms (${(without / N).toFixed(1)} ms each)`);
console.log(`speed-up: ${(without / withSharing).toFixed(1)}x (target >= 5x)`);
