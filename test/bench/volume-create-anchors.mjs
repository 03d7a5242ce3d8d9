// Benchmark: `enssib volume create` against the same flow run three other ways,
// in the same run, on the hosts lab at 1, 3 and 20 workers:
//   (a) serial ssh script  — one ssh connection per command, one command after the
//                            other, as the site's old shell scripts did;
//   (b) Ansible            — one play per step, `command` tasks, pipelining and
//                            ControlPersist on, forks = hosts, no fact gathering;
//   (c) ssh session/host   — one ssh master per host opened at the start, then one
//                            command per host per step, a step's hosts at once (the
//                            practical limit of plain ssh for this flow);
// and enssib's critical path: the longest chain of dependent stand-in calls (0.2 s
// each) in the plan enssib ran, counted from its JSON report (phases one after
// the other, a phase's hosts at once, a host's commands in order; the calls of a
// loop in a remote script taken from the host's stand-in log).
// Targets: enssib within 1.3x of its critical path at 1 and 3 workers, 1.6x at 20;
// at 20 workers at least 4x faster than Ansible and 6x faster than the serial script.
// Prints the medians; asserts nothing.
//
// The flow (a)-(c) run is enssib's for a new volume: on both storage servers
// read DRBD (3 calls), vgs, lvs, the running SCST configuration and blkid; on the
// metadata host lvcreate and mkfs; on the other lvchange -ay; on both write
// /etc/scst.conf and apply it; on every worker list the node records, then
// discovery and the record check on both portals; on one worker list the
// sessions, log in through both portals, wait for udev and multipath, check the
// map, log out of both. (They take no lock and do not undo on failure.)
//
// Prerequisites: root, the Docker engine, and Ansible: `apt-get install ansible-core`
// (Debian's; the lab image has python3 for it). Takes over the hosts lab (its own
// state dir, 20 workers; the workers a size does not use stay idle) and stops it at
// the end (KEEP=1 keeps it). About 10 minutes with RUNS=3 (the default).
//
//   npm run build && flock /tmp/enssib-lab.lock node test/bench/volume-create-anchors.mjs
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hostsLabDown, hostsLabUp, installStorageStandIns, median, requireBuild, ROOT, STORAGE_TOOLS } from './lib.mjs';

requireBuild();
const exec = promisify(execFile);
const RUNS = Number(process.env.RUNS ?? 3);
const SIZES = (process.env.SIZES ?? '1,3,20').split(',').map(Number);
const DELAY = 0.2;
try {
  execFileSync('ansible-playbook', ['--version'], { stdio: 'ignore' });
} catch {
  console.error('ansible-playbook not found: apt-get install ansible-core');
  process.exit(2);
}

const state = process.env.STATE ?? '/tmp/enssib-bench-anchors';
const inventory = hostsLabUp(state, ['--workers', String(Math.max(...SIZES))]);
installStorageStandIns(state, DELAY);
const lab = JSON.parse(readFileSync(join(state, 'hosts.json'), 'utf8'));
const sshConfig = join(state, 'ssh_config');
const work = mkdtempSync(join(tmpdir(), 'enssib-bench-anchors-'));

/** Forgets every stand-in state, the SCST files and the lock, on every host (in parallel). */
const reset = () =>
  Promise.all(lab.map((h) => exec('docker', ['exec', h.container, 'sh', '-c', 'rm -rf /var/lib/enssib-stand-in /etc/scst.conf /run/lock/enssib-storage.lock /run/lock/bench.lock; : > /var/log/enssib-stand-ins.log'])));

/** The lab inventory with only the first n workers. */
const inventoryWith = (n) => {
  const text = readFileSync(inventory, 'utf8')
    .split('\n')
    .filter((l) => {
      const m = /name: node(\d+),/.exec(l);
      return !m || Number(m[1]) <= n;
    })
    .join('\n');
  const f = join(state, `inventory-${n}.yaml`);
  writeFileSync(f, text);
  return f;
};

// ---------------------------------------------------------------- the flow, as data

const P1 = '10.66.6.1:3260';
const P2 = '10.66.6.2:3260';
const SCST_CONF = (name, iqn) =>
  `HANDLER vdisk_blockio {\n\tDEVICE ${name} {\n\t\tfilename /dev/vg_cluster/${name}\n\t}\n}\n\nTARGET_DRIVER iscsi {\n\tenabled 1\n\tTARGET ${iqn} {\n\t\tLUN 0 ${name}\n\t\tenabled 1\n\t}\n}\n`;

/** Steps of the flow: each runs its commands (shell lines) on its hosts; a step starts when the previous one is done everywhere. */
function flow(name, workers) {
  const iqn = `iqn.2016-04.fr.enssib:${name}`;
  const dev = `/dev/vg_cluster/${name}`;
  const servers = ['data1', 'data2'];
  const verifier = workers[0];
  const conf = SCST_CONF(name, iqn).replace(/\t/g, '\\t').replace(/\n/g, '\\n');
  return [
    { title: 'read', hosts: servers, commands: ['drbdadm role r0', 'drbdadm cstate r0', 'drbdadm dstate r0', 'vgs --reportformat json vg_cluster', 'lvs --reportformat json vg_cluster', 'scstadmin -noprompt -write_config /tmp/scst.running', `blkid -o value -s TYPE ${dev} || true`] },
    { title: 'lv', hosts: ['data1'], commands: [`lvcreate --yes --name ${name} --size 1g --addtag enssib vg_cluster`, `mkfs.ext4 -q ${dev}`] },
    { title: 'activate', hosts: ['data2'], commands: [`lvchange --activate y vg_cluster/${name}`] },
    { title: 'export', hosts: servers, commands: [`printf '${conf}' > /etc/scst.conf`, 'scstadmin -noprompt -config /etc/scst.conf'] },
    {
      title: 'discovery',
      hosts: workers,
      commands: ['iscsiadm -m node || true', ...[P1, P2].flatMap((p) => [`iscsiadm -m discovery -t st -p ${p} >/dev/null`, `iscsiadm -m node -T ${iqn} -p ${p} -o show >/dev/null`])],
    },
    {
      title: 'verify',
      hosts: [verifier],
      commands: [
        'iscsiadm -m session -P 3 || true',
        `iscsiadm -m node -T ${iqn} -p ${P1} --login`,
        `iscsiadm -m node -T ${iqn} -p ${P2} --login`,
        'udevadm settle',
        'iscsiadm -m session -P 3 >/dev/null',
        'multipath -ll >/dev/null',
        'multipath -ll >/dev/null',
        'iscsiadm -m session -P 3 >/dev/null',
        `multipath -ll | grep -c ' active ready running' | grep -qx 2`,
        `iscsiadm -m node -T ${iqn} -p ${P1} --logout`,
        `iscsiadm -m node -T ${iqn} -p ${P2} --logout`,
      ],
    },
  ];
}

const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

// (a) one ssh connection per command, one after the other
async function serialScript(steps) {
  const lines = ['#!/bin/sh', 'set -e', `S="ssh -F ${sshConfig} -o ControlMaster=no -o ControlPath=none"`];
  for (const s of steps) for (const h of s.hosts) for (const c of s.commands) lines.push(`$S ${h} ${shq(c)}`);
  const f = join(work, 'serial.sh');
  writeFileSync(f, `${lines.join('\n')}\n`);
  const t0 = process.hrtime.bigint();
  await exec('sh', [f], { maxBuffer: 1 << 26 });
  return seconds(t0);
}

// (b) Ansible: one play per step, one `shell` task per command
function ansibleFiles(steps, hosts) {
  const dir = join(work, 'ansible');
  mkdirSync(dir, { recursive: true });
  const byName = new Map(lab.map((h) => [h.name, h]));
  writeFileSync(
    join(dir, 'hosts.ini'),
    `[lab]\n${hosts.map((h) => `${h} ansible_host=127.0.0.1 ansible_port=${byName.get(h).port} ansible_user=root`).join('\n')}\n\n[lab:vars]\nansible_python_interpreter=/usr/bin/python3\nansible_ssh_private_key_file=${join(state, 'id_ed25519')}\n`,
  );
  writeFileSync(
    join(dir, 'ansible.cfg'),
    [
      '[defaults]',
      `forks = ${hosts.length}`,
      'gathering = explicit',
      'host_key_checking = True',
      'interpreter_python = /usr/bin/python3',
      'stdout_callback = minimal',
      'retry_files_enabled = False',
      '[ssh_connection]',
      'pipelining = True',
      `ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=${join(state, 'known_hosts')} -o IdentitiesOnly=yes -o BatchMode=yes`,
      `control_path = ${join(dir, 'cp')}/%%h-%%p-%%r`,
      '',
    ].join('\n'),
  );
  const play = steps.map((s) => [`- hosts: ${s.hosts.join(',')}`, '  gather_facts: false', '  tasks:', ...s.commands.flatMap((c) => [`    - shell: ${JSON.stringify(c)}`])].join('\n')).join('\n');
  writeFileSync(join(dir, 'play.yml'), `${play}\n`);
  return dir;
}
async function ansible(steps, hosts) {
  const dir = ansibleFiles(steps, hosts);
  rmSync(join(dir, 'cp'), { recursive: true, force: true });
  mkdirSync(join(dir, 'cp'));
  const t0 = process.hrtime.bigint();
  await exec('ansible-playbook', ['-i', join(dir, 'hosts.ini'), join(dir, 'play.yml')], { cwd: dir, env: { ...process.env, ANSIBLE_CONFIG: join(dir, 'ansible.cfg') }, maxBuffer: 1 << 26 });
  const s = seconds(t0);
  // ControlPersist keeps the masters after the play: close them, so that every run starts cold
  const byName = new Map(lab.map((h) => [h.name, h]));
  await Promise.all(hosts.map((h) => exec('ssh', ['-o', `ControlPath=${join(dir, 'cp')}/127.0.0.1-${byName.get(h).port}-root`, '-O', 'exit', '127.0.0.1']).catch(() => undefined)));
  return s;
}

// (c) one ssh master per host, opened at once at the start; then one command per host per step, a step's hosts at once
async function sessionPerHost(steps, hosts) {
  const cp = join(work, 'cp');
  mkdirSync(cp, { recursive: true });
  const opts = (h) => ['-F', sshConfig, '-o', `ControlPath=${cp}/${h}`];
  const t0 = process.hrtime.bigint();
  // -f: ssh goes to the background once the connection is up (its output is not waited for)
  await Promise.all(hosts.map((h) => detached('ssh', [...opts(h), '-o', 'ControlMaster=yes', '-o', 'ControlPersist=yes', '-fN', h])));
  for (const s of steps) await Promise.all(s.hosts.map((h) => exec('ssh', [...opts(h), h, s.commands.join(' && ')], { maxBuffer: 1 << 26 })));
  const sec = seconds(t0);
  await Promise.all(hosts.map((h) => exec('ssh', [...opts(h), '-O', 'exit', h]).catch(() => undefined)));
  return sec;
}

/** Runs a command whose output nobody reads and resolves when it exits (0) — a backgrounded ssh master keeps no pipe open. */
function detached(cmd, args) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}`))));
  });
}

function shq(s) {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// ---------------------------------------------------------------- enssib

let serial = 0;
async function enssib(n) {
  const t0 = process.hrtime.bigint();
  const { stdout } = await exec(process.execPath, [join(ROOT, 'bin/enssib.js'), '-i', inventoryWith(n), '-o', 'json', 'volume', 'create', `bench${serial++}`, '1G'], {
    env: { ...process.env, NO_COLOR: '1', CI: '1' },
    maxBuffer: 1 << 26,
  });
  const s = seconds(t0);
  const doc = JSON.parse(stdout);
  if (doc.exitCode !== 0) throw new Error(`enssib volume create failed:\n${stdout}`);
  return { s, doc };
}

/** Stand-in calls in one command line as the report shows it (a loop's body counts once). */
const callsIn = (line) => (line.match(new RegExp(`(^|[\\s;&|(])(${STORAGE_TOOLS.map((t) => t.replace('.', '\\.')).join('|')})(?=\\s|$)`, 'g')) ?? []).length;

/** How many stand-in calls each host recorded (its log since the last reset). */
async function callsPerHost() {
  const logs = await Promise.all(lab.map((h) => exec('docker', ['exec', h.container, 'cat', '/var/log/enssib-stand-ins.log'])));
  return new Map(lab.map((h, i) => [h.name, logs[i].stdout.split('\n').filter((l) => STORAGE_TOOLS.includes(l.split('\t')[0])).length]));
}

/**
 * The longest chain of stand-in calls in the report: phases run one after the other, the hosts of a
 * phase at once, and a host's checks and actions one after the other. Calls are counted in the command
 * lines; a loop in a remote script (log in through each portal…) counts once there, so a host's calls
 * that its log has beyond that count go to its phase that runs such a loop.
 */
function criticalCalls(doc, logged) {
  const weight = doc.phases.map((p) => new Map(p.hosts.map((h) => [h.host, [...h.checks, ...h.actions].reduce((a, l) => a + callsIn(l), 0)])));
  for (const [host, n] of logged) {
    const counted = weight.reduce((a, w) => a + (w.get(host) ?? 0), 0);
    const loop = doc.phases.findLastIndex((p) => p.hosts.some((h) => h.host === host && h.actions.some((l) => /\b(for|while) /.test(l))));
    if (n > counted && loop >= 0) weight[loop].set(host, weight[loop].get(host) + n - counted);
  }
  return weight.reduce((sum, w) => sum + Math.max(0, ...w.values()), 0);
}

// ---------------------------------------------------------------- run

const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const loads = [load()];
const results = {};
try {
  await enssib(1); // warm the containers' caches
  await reset();
  for (const n of SIZES) {
    const workers = Array.from({ length: n }, (_, i) => `node${String(i + 1).padStart(2, '0')}`);
    const hosts = ['data1', 'data2', ...workers];
    const r = (results[n] = { serial: [], ansible: [], session: [], enssib: [], critical: [], workerPhase: [] });
    // A way that fails is reported and left out of the medians; the others still run.
    const attempt = async (what, fn) => {
      await reset();
      try {
        return await fn();
      } catch (e) {
        console.error(`  ${n} worker(s): ${what} failed: ${String(e.stderr ?? e.message).trim().split('\n').slice(-8).join('\n    ')}`);
        return null;
      }
    };
    for (let i = 0; i < RUNS; i++) {
      const e = await attempt('enssib', () => enssib(n));
      if (e) {
        r.enssib.push(e.s);
        r.critical.push(criticalCalls(e.doc, await callsPerHost()) * DELAY);
        const disc = e.doc.phases.find((p) => p.title.startsWith('discovery'));
        r.workerPhase.push(Math.max(...disc.hosts.map((h) => h.durationMs)) / 1000);
      }
      const ways = [
        ['serial', () => serialScript(flow(`serial${i}`, workers))],
        ['ansible', () => ansible(flow(`ansible${i}`, workers), hosts)],
        ['session', () => sessionPerHost(flow(`session${i}`, workers), hosts)],
      ];
      for (const [k, fn] of ways) {
        const t = await attempt(k, fn);
        if (t !== null) r[k].push(t);
      }
      loads.push(load());
      const last = (k) => (r[k].length ? `${r[k].at(-1).toFixed(1)} s` : 'failed');
      console.error(`  ${n} worker(s), run ${i + 1}/${RUNS}: enssib ${e ? `${e.s.toFixed(1)} s` : 'failed'}, serial ${last('serial')}, Ansible ${last('ansible')}, session/host ${last('session')}`);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
  if (!process.env.KEEP) hostsLabDown(state);
}

const f = (x) => (Number.isFinite(x) ? `${x.toFixed(1)} s` : 'failed');
console.log(`volume create on the hosts lab, stand-in calls ${DELAY} s, median of ${RUNS} run(s); load average during the runs: ${loads.join(' / ')}`);
console.log('| workers | serial ssh script | Ansible | ssh session per host | enssib | enssib critical path | enssib / critical | worker phase |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
const m = {};
for (const n of SIZES) {
  const r = results[n];
  m[n] = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.length ? median(v) : NaN]));
  console.log(`| ${n} | ${f(m[n].serial)} | ${f(m[n].ansible)} | ${f(m[n].session)} | ${f(m[n].enssib)} | ${f(m[n].critical)} | ${(m[n].enssib / m[n].critical).toFixed(2)}x | ${f(m[n].workerPhase)} |`);
}
for (const n of SIZES) {
  const t = n >= 20 ? 1.6 : 1.3;
  const ratio = m[n].enssib / m[n].critical;
  console.log(`  ${n} worker(s): enssib ${ratio.toFixed(2)}x its critical path (target <= ${t}x) ${ratio <= t ? 'OK' : 'OVER TARGET'}`);
}
const big = Math.max(...SIZES);
if (m[big] && big >= 20) {
  const a = m[big].ansible / m[big].enssib;
  const s = m[big].serial / m[big].enssib;
  console.log(`  ${big} workers: Ansible / enssib ${a.toFixed(1)}x (target >= 4x) ${a >= 4 ? 'OK' : 'UNDER TARGET'}; serial / enssib ${s.toFixed(1)}x (target >= 6x) ${s >= 6 ? 'OK' : 'UNDER TARGET'}`);
}
if (m[1] && m[big] && big > 1) {
  const w = m[big].workerPhase / m[1].workerPhase;
  console.log(`  worker phase ${big} vs 1 worker: ${w.toFixed(2)}x (target <= 1.5x) ${w <= 1.5 ? 'OK' : 'OVER TARGET'}`);
}
