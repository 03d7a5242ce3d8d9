// What the remote supervisor costs each command on the host, beside the same
// command sent bare: CPU time (the children's user + system time) and, with
// strace installed, the processes and programs it starts. The line is run as
// sshd runs it (the login shell, `bash -c LINE`) on this machine: no lab, and
// the counts do not depend on the machine's load (the CPU time does, a little).
// The fan-out benchmark's 20 hosts share this machine's cores: on a loaded
// machine, these figures explain its ratio.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBuild, ROOT } from './lib.mjs';

requireBuild();
const { SshHost } = await import(join(ROOT, 'dist/remote/ssh.js'));
const host = new SshHost({ name: 'bench', target: 'bench', connectTimeoutS: 5, commandTimeoutS: 60, controlPersistS: 60 });
const N = Number(process.env.N ?? 200);
const argv = ['sleep', '0.02'];
const input = Buffer.from('abc');

/** Children's CPU time so far, in ms (/proc/self/stat cutime + cstime, 10 ms ticks). */
const childCpuMs = () => {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
};

/** Runs the line as sshd would, with stdin an open pipe (the watchdog) until the command ends. */
const once = (line, data) =>
  new Promise((resolve) => {
    const c = spawn('bash', ['-c', line], { stdio: ['pipe', 'ignore', 'ignore'] });
    if (data) c.stdin.write(data);
    c.on('close', () => {
      c.stdin.end();
      resolve();
    });
  });

/** Processes and programs one run starts (strace -f), stdin closed after the command so a lingering watchdog ends too. */
function count(line, data) {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-bench-'));
  try {
    const feed = `{ ${data ? `printf ${data.toString()};` : ''} sleep 1; }`;
    const r = spawnSync('sh', ['-c', `${feed} | strace -f -c -o "$1/st" -e trace=execve,clone,clone3,fork,vfork bash -c "$2" >/dev/null 2>&1`, 'sh', dir, line]);
    if (r.error || r.status !== 0) return null;
    const rows = readFileSync(join(dir, 'st'), 'utf8')
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((c) => /^(execve|clone3?|v?fork)$/.test(c.at(-1)));
    const ok = (re) => rows.filter((c) => re.test(c.at(-1))).reduce((a, c) => a + Number(c[3]) - (c.length === 6 ? Number(c[4]) : 0), 0);
    return { processes: ok(/^(clone3?|v?fork)$/) + 1, programs: ok(/^execve$/) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const cases = [
  ['bare command (no supervisor)', argv.join(' '), null],
  ['supervised', host.supervisedLine(argv, {}, 60_000, null), null],
  ['supervised, with input', host.supervisedLine(argv, {}, 60_000, input.length), input],
];
console.log(`load average: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
for (const [title, line, data] of cases) {
  await once(line, data);
  const t0 = childCpuMs();
  for (let i = 0; i < N; i++) await once(line, data);
  const cpu = (childCpuMs() - t0) / N;
  const c = count(line, data);
  const procs = c ? `${c.processes} processes, ${c.programs} programs` : 'no process count (strace missing or failed)';
  console.log(`${title.padEnd(30)} ${cpu.toFixed(2)} ms CPU per command, ${procs} (the command included)`);
}
