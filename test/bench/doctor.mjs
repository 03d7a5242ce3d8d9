// Benchmark: `enssib doctor` (every host check: ssh, clock, DRBD, targets, LVM,
// paths, MTU, gateway, pod routes, NFS) on the 5 hosts of the hosts lab at once,
// against the slowest of the same checks on one host alone.
// Target: 5 hosts within 1.3x the slowest single host.
//
// Real ssh to the hosts-lab containers (data1, data2, node01..node03), with the
// storage stand-ins of the hosts tests and the stand-in `ip`; every run starts
// from cold ssh connections, as a user's does. Registry and API checks are left
// out (the registry and API server checks run from this machine, beside the
// hosts; this lab has no registry for the workers' registry-pull check). Prints the figures;
// asserts nothing. It also prints the floor this machine sets: a cold ssh
// connection (`true`) to one host alone against all of them at once — in the
// lab every host's sshd shares this machine's cores, so the handshakes'
// CPU (sntrup761x25519 key exchange at both ends) alone exceeds 1.3x here,
// where on the site each host spends its own. Uses the hosts lab in $STATE (default /tmp/enssib-lab-hosts;
// up.sh reuses running containers) and leaves it up.
//
//   npm run build && flock /tmp/enssib-lab.lock node test/bench/doctor.mjs
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { hostsLabUp, median, requireBuild, timeIt, ROOT } from './lib.mjs';

requireBuild();
const { loadInventory } = await import(join(ROOT, 'dist/inventory/load.js'));
const { createContext } = await import(join(ROOT, 'dist/context.js'));
const { sshPool } = await import(join(ROOT, 'dist/remote/pool.js'));
const { createOutput } = await import(join(ROOT, 'dist/ui/output.js'));
const { createPrompter } = await import(join(ROOT, 'dist/ui/prompt.js'));
const { doctorSite, runDoctor } = await import(join(ROOT, 'dist/doctor/usecases.js'));
const { HOST_CHECKS } = await import(join(ROOT, 'dist/doctor/checks.js'));

const TOOLS = ['drbdadm', 'vgs', 'lvs', 'scstadmin', 'iscsiadm', 'multipath', 'dmsetup'];
const RUNS = Number(process.env.RUNS ?? 7);
const state = process.env.STATE ?? '/tmp/enssib-lab-hosts';
const file = hostsLabUp(state, []);
const standIns = join(state, 'stand-ins', 'bin');
copyFileSync(join(ROOT, 'test/integration/hosts/stand-ins/storage.sh'), join(standIns, 'enssib-storage-stand-in'));
chmodSync(join(standIns, 'enssib-storage-stand-in'), 0o755);
for (const t of TOOLS) {
  rmSync(join(standIns, t), { force: true });
  symlinkSync('enssib-storage-stand-in', join(standIns, t));
}
copyFileSync(join(ROOT, 'test/integration/hosts/stand-ins/ip.sh'), join(standIns, 'ip'));
chmodSync(join(standIns, 'ip'), 0o755);
writeFileSync(join(standIns, 'stand-in.conf'), '\n');
const containers = JSON.parse(readFileSync(join(state, 'hosts.json'), 'utf8'));
const inv = loadInventory({ path: file, source: '--inventory' }, {});
for (const h of inv.hosts) {
  const c = containers.find((x) => x.name === h.name).container;
  const addr = JSON.stringify([{ ifname: 'eth1', mtu: 9000, operstate: 'UP', addr_info: [{ family: 'inet', local: h.address, prefixlen: 24 }] }]);
  const routes = JSON.stringify([{ dst: 'default', gateway: '10.66.6.10', dev: 'eth1' }, ...inv.workers().filter((w) => w.name !== h.name).map((w) => ({ dst: w.podSubnet, gateway: w.address, dev: 'eth1' }))]);
  execFileSync('docker', ['exec', '-i', c, 'sh', '-c', 'mkdir -p /var/lib/enssib-stand-in/ip && cat > /var/lib/enssib-stand-in/ip/addr.json'], { input: addr });
  execFileSync('docker', ['exec', '-i', c, 'sh', '-c', 'cat > /var/lib/enssib-stand-in/ip/route.json'], { input: routes });
}

const site = doctorSite(inv);
const checks = HOST_CHECKS.map((c) => c.id).filter((c) => c !== 'registry-pull');
const out = createOutput({ format: 'json', color: false, verbose: false });
const newContext = () => createContext({ opts: { inventory: file, dryRun: false, yes: true, output: 'json', concurrency: 10, color: false, verbose: false }, out, prompt: createPrompter({ yes: true, isTTY: false }), renderer: 'silent', inventory: () => inv, hosts: sshPool });
async function once(hosts) {
  const ctx = newContext();
  const ms = await timeIt(async () => {
    const fs = await runDoctor(ctx, site, { hosts, checks });
    const unreached = fs.filter((f) => f.check === 'ssh' && f.severity !== 'ok');
    if (unreached.length) throw new Error(`unreachable: ${unreached.map((f) => `${f.host}: ${f.found}`).join('; ')}`);
  });
  await ctx.hosts().closeAll();
  return ms;
}

/** Cold ssh connections (nothing but `true`) to `hosts` at once. */
async function connect(hosts) {
  const ctx = newContext();
  const ms = await timeIt(() => Promise.all(hosts.map((h) => ctx.hosts().get(h).run(['true'], { sudo: false }))));
  await ctx.hosts().closeAll();
  return ms;
}

const all = inv.hosts.map((h) => h.name);
const per = {};
await once(all); // warm-up: page cache, sshd
for (const h of all) per[h] = [];
const together = [];
const sshPer = Object.fromEntries(all.map((h) => [h, []]));
const sshAll = [];
const loadBefore = loadavg()[0];
for (let i = 0; i < RUNS; i++) {
  for (const h of all) per[h].push(await once([h]));
  together.push(await once(all));
  for (const h of all) sshPer[h].push(await connect([h]));
  sshAll.push(await connect(all));
}
const sshSlowest = Math.max(...all.map((h) => median(sshPer[h])));
const single = Object.fromEntries(all.map((h) => [h, median(per[h])]));
const slowest = Math.max(...Object.values(single));
const five = median(together);
for (const h of all) console.log(`  ${h.padEnd(7)} alone: ${single[h].toFixed(0)} ms (median of ${RUNS})`);
console.log(`load average (1 min) ${loadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after, on ${cpus().length} CPUs`);
console.log(`floor: a cold ssh connection, ${all.length} hosts at once ${median(sshAll).toFixed(0)} ms vs slowest single host ${sshSlowest.toFixed(0)} ms = ${(median(sshAll) / sshSlowest).toFixed(2)}x`);
console.log(`doctor, ${checks.length} host checks: ${all.length} hosts ${five.toFixed(0)} ms vs slowest single host ${slowest.toFixed(0)} ms = ${(five / slowest).toFixed(2)}x (target <= 1.3x)`);
for (const t of [...TOOLS, 'ip', 'enssib-storage-stand-in', 'stand-in.conf']) rmSync(join(standIns, t), { force: true });
