/**
 * The plan/run engine and the ssh layer against the hosts lab: real OpenSSH
 * servers in Debian containers, one per inventory host.
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createContext, type GlobalOptions } from '../../../src/context.js';
import { execute } from '../../../src/engine/execute.js';
import { runPlan } from '../../../src/engine/runner.js';
import type { Plan } from '../../../src/engine/types.js';
import { ExitCode } from '../../../src/errors.js';
import { fileInventory, loadInventory } from '../../../src/inventory/load.js';
import { sshPool } from '../../../src/remote/pool.js';
import { SshHost } from '../../../src/remote/ssh.js';
import { createOutput } from '../../../src/ui/output.js';
import { createPrompter } from '../../../src/ui/prompt.js';
import { enssib } from '../../support/cli.js';
import { hostsLab } from '../../support/hosts-lab.js';

const lab = hostsLab();
const inv = lab.inventory();
const HOSTS = inv.hosts.map((h) => h.name);
const pool = sshPool(inv);
afterAll(() => pool.closeAll());

const run = (plan: Plan, concurrency = 10) => runPlan(plan, { mode: 'apply', concurrency, hosts: pool });

const HOSTILE = ['with space', "it's", '"dq"', '$(id)', '`id`', 'a;reboot', 'x && y', 'line1\nline2', '', '*', '$HOME', '\\', 'ünï ✓', "'"];

describe('hosts lab: engine over real ssh', () => {
  it('fans out to 5 hosts in parallel', async () => {
    expect(HOSTS).toHaveLength(5);
    const script = 'date +%s.%N; sleep 1; date +%s.%N';
    const r = await run({ title: 'parallel', mutating: false, phases: [{ title: 'sleep', hosts: HOSTS, plan: () => [{ kind: 'command', argv: ['sh', '-c', script] }] }] });
    expect(r.exitCode).toBe(0);
    expect(r.phases[0]?.hosts.map((h) => h.status)).toEqual(HOSTS.map(() => 'done'));
    // Every host's sleep started before any host's sleep ended: they overlapped.
    const spans = await Promise.all(HOSTS.map((h) => pool.get(h).run(['sh', '-c', script]).then((x) => x.stdout.trim().split('\n').map(Number))));
    const latestStart = Math.max(...spans.map((s) => s[0] as number));
    const earliestEnd = Math.min(...spans.map((s) => s[1] as number));
    expect(latestStart).toBeLessThan(earliestEnd);
  });

  it('writes a file once: the second run reports unchanged', async () => {
    const path = `/etc/enssib-test/engine-${Date.now()}.conf`;
    const content = 'nv_cache 0\nwrite_through 1\n';
    const plan: Plan = {
      title: 'file',
      mutating: true,
      phases: [{ title: 'write', hosts: HOSTS, plan: () => [{ kind: 'file', file: { path, content, mode: '0640', owner: 'root:root' } }] }],
    };
    const first = await run(plan);
    expect(first.phases[0]?.hosts.map((h) => h.status)).toEqual(HOSTS.map(() => 'done'));
    const second = await run(plan);
    expect(second.phases[0]?.hosts.map((h) => h.status)).toEqual(HOSTS.map(() => 'unchanged'));
    const onHost = await pool.get('node02').run(['sh', '-c', 'cat "$1"; stat -c "%a %U:%G" "$1"; ls -a "$(dirname "$1")" | grep -c enssib\\. || true', 'sh', path]);
    expect(onHost.stdout).toBe(`${content}640 root:root\n0\n`);
    // Changing the mode alone rewrites it.
    plan.phases[0] = { title: 'write', hosts: HOSTS, plan: () => [{ kind: 'file', file: { path, content, mode: '0600' } }] };
    expect((await run(plan)).phases[0]?.hosts.every((h) => h.status === 'done')).toBe(true);
  });

  it('a command failing on one host while the others finish is a partial failure with command, exit code and stderr', async () => {
    const argv = ['sh', '-c', 'if [ "$(hostname)" = node02 ]; then echo "disk on fire" >&2; exit 7; fi; echo ok'];
    const r = await run({ title: 'one fails', mutating: true, phases: [{ title: 'try', hosts: HOSTS, continueOnError: true, plan: () => [{ kind: 'command', argv }] }] });
    expect(r.exitCode).toBe(ExitCode.partial);
    const byHost = Object.fromEntries(r.phases[0]?.hosts.map((h) => [h.host, h]) ?? []);
    expect(byHost.node02).toMatchObject({ status: 'failed', error: { remoteExitCode: 7, exitCode: 1, details: ['disk on fire'] } });
    expect(byHost.node02?.error?.command).toContain("'if [ \"$(hostname)\" = node02 ]");
    for (const h of HOSTS.filter((x) => x !== 'node02')) expect(byHost[h]?.status).toBe('done');
  });

  it('what arrives on the host is byte-identical to the argv (root and through sudo -n)', async () => {
    const viaRoot = await pool.get('data1').run(['printf', '%s\\0', ...HOSTILE]);
    expect(viaRoot.stdout.split('\0').slice(0, -1)).toEqual(HOSTILE);
    const adminInv = loadInventory({ path: lab.variant((t) => t.replace('connectTimeout: 5', 'connectTimeout: 5\n  user: admin')), source: '--inventory' }, {});
    const admin = new SshHost(adminInv.ssh('data1'));
    const viaSudo = await admin.run(['sh', '-c', 'id -u; printf "%s\\0" "$@"', 'sh', ...HOSTILE]);
    expect(admin.describe(['id'])).toBe('sudo -n -- id');
    const [uid, rest] = [viaSudo.stdout.slice(0, viaSudo.stdout.indexOf('\n')), viaSudo.stdout.slice(viaSudo.stdout.indexOf('\n') + 1)];
    expect(uid).toBe('0');
    expect(rest.split('\0').slice(0, -1)).toEqual(HOSTILE);
    await admin.close();
  });

  it('a user without passwordless sudo gets a clear error, never a password prompt', async () => {
    const i = loadInventory({ path: lab.variant((t) => t.replace('connectTimeout: 5', 'connectTimeout: 5\n  user: nosudo')), source: '--inventory' }, {});
    const h = new SshHost(i.ssh('node01'));
    await expect(h.run(['true'])).rejects.toThrow(/sudo asks user "nosudo" for a password; enssib never types one/);
    await h.close();
  });

  it('many commands share one connection (ControlMaster)', async () => {
    const logins = () => {
      const r = spawnSync('docker', ['logs', 'enssib-lab-node03'], { encoding: 'utf8' });
      return `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('Accepted publickey')).length;
    };
    const h = new SshHost(inv.ssh('node03'));
    const before = logins();
    for (let i = 0; i < 10; i++) await h.run(['true']);
    await Promise.all(Array.from({ length: 10 }, () => h.run(['true'])));
    expect(logins() - before).toBeLessThanOrEqual(1);
    await h.close();
    const unshared = new SshHost(inv.ssh('node03'), { share: false });
    const before2 = logins();
    for (let i = 0; i < 3; i++) await unshared.run(['true']);
    expect(logins() - before2).toBe(3);
  });

  it('journals a mutating run and prints its summary', async () => {
    const stdout = new PassThrough();
    let text = '';
    stdout.on('data', (b: Buffer) => (text += b.toString()));
    const opts: GlobalOptions = { inventory: lab.inventoryFile, dryRun: false, yes: true, output: 'text', concurrency: 5, color: false, verbose: false };
    const ctx = createContext({ opts, out: createOutput({ format: 'text', color: false, verbose: false, stdout }), prompt: createPrompter({ yes: true, isTTY: false }), env: {}, argv: ['enssib', 'test'], renderer: 'silent', inventory: fileInventory(lab.inventoryFile, {}), hosts: (inv) => sshPool(inv) });
    const report = await execute(ctx, { title: 'journal test', mutating: true, phases: [{ title: 'touch', hosts: ['data1'], plan: () => [{ kind: 'command', argv: ['touch', '/tmp/enssib-journal-test'] }] }] });
    expect(report.exitCode).toBe(0);
    expect(text).toMatch(/Summary of "journal test"[\s\S]*data1\s+done/);
    const journal = ctx.inventory().journalFile() as string;
    const last = JSON.parse(readFileSync(journal, 'utf8').trim().split('\n').at(-1) as string) as Record<string, unknown>;
    expect(last).toMatchObject({ plan: 'journal test', argv: ['enssib', 'test'], exitCode: 0, phases: [{ title: 'touch', hosts: [{ host: 'data1', status: 'done', actions: ['touch /tmp/enssib-journal-test'] }] }] });
    await ctx.hosts().closeAll();
  });

  it('a server dry run reads facts and changes nothing', async () => {
    const path = `/etc/enssib-test/server-dry-run-${Date.now()}`;
    const r = await runPlan(
      {
        title: 'server',
        mutating: true,
        phases: [{ title: 'w', hosts: ['data2'], checks: () => [['test', '-e', path]], plan: (_h, f) => (f?.[0]?.exitCode === 0 ? [] : [{ kind: 'command', argv: ['touch', path] }]) }],
      },
      { mode: 'server', concurrency: 5, hosts: pool },
    );
    expect(r.phases[0]?.hosts[0]).toMatchObject({ status: 'would-change', checks: [`test -e ${path}`], actions: [`touch ${path}`] });
    expect((await pool.get('data2').exec(['test', '-e', path])).exitCode).toBe(1);
  });

  it('the CLI: doctor reaches every host', async () => {
    // --only ssh: the lab inventory names the site's registry and API server, which tests never contact.
    const r = await enssib(['--inventory', lab.inventoryFile, 'doctor', '--only', 'ssh']);
    expect(r.code).toBe(0);
    for (const h of HOSTS) expect(r.stdout).toMatch(new RegExp(`^OK\\s+${h}\\s+ssh\\s+reachable, host key known`, 'm'));
    const j = await enssib(['--inventory', lab.inventoryFile, 'doctor', '-o', 'json', '--only', 'ssh', '--host', 'data1,node01']);
    const doc = JSON.parse(j.stdout) as { findings: { host: string; severity: string }[] };
    expect(doc.findings.map((f) => `${f.host}:${f.severity}`)).toEqual(['data1:ok', 'node01:ok']);
    const bad = await enssib(['--inventory', lab.inventoryFile, 'doctor', '--host', 'node99']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--host: no host "node99"');
  });
});

describe('hosts lab: hosts that stop answering', () => {
  it('a paused host times out, is reported for that host 2 s after the deadline, and the others finish', async () => {
    lab.docker('pause', 'enssib-lab-node01');
    try {
      const t0 = Date.now();
      const r = await run({
        title: 'paused',
        mutating: true,
        phases: [{ title: 'echo', hosts: HOSTS, continueOnError: true, plan: () => [{ kind: 'command', argv: ['echo', 'hi'], timeoutMs: 4000 }] }],
      });
      expect(r.exitCode).toBe(ExitCode.partial);
      const node01 = r.phases[0]?.hosts.find((h) => h.host === 'node01');
      expect(node01?.status).toBe('failed');
      expect(node01?.error?.message).toMatch(/^node01: (no answer after 4 s|connection to .* timed out)/);
      // not after the host's SIGKILL delay and more (it was 10 s after the deadline): a frozen host cannot say it stopped the command
      expect(Date.now() - t0).toBeLessThan(4000 + 2000 + 1500);
      expect(r.phases[0]?.hosts.filter((h) => h.status === 'done')).toHaveLength(4);
    } finally {
      lab.docker('unpause', 'enssib-lab-node01');
    }
  });

  it('a stopped host is a connection error for that host; the CLI exits with the partial-failure code', async () => {
    lab.docker('stop', '-t', '1', 'enssib-lab-node03');
    try {
      const fresh = sshPool(lab.inventory());
      const r = await runPlan(
        { title: 'stopped', mutating: false, phases: [{ title: 'echo', hosts: HOSTS, continueOnError: true, plan: () => [{ kind: 'command', argv: ['echo', 'hi'] }] }] },
        { mode: 'apply', concurrency: 5, hosts: fresh },
      );
      const node03 = r.phases[0]?.hosts.find((h) => h.host === 'node03');
      expect(node03?.error?.message).toMatch(/^node03: (connection refused by|connection to .* was closed|cannot reach)/);
      expect(r.exitCode).toBe(ExitCode.partial);
      const cli = await enssib(['--inventory', lab.inventoryFile, 'doctor', '--only', 'ssh']);
      expect(cli.code).toBe(ExitCode.failed);
      expect(cli.stdout).toMatch(/^FAIL\s+node03\s+ssh\s+(connection refused by|connection to .* was closed|cannot reach)/m);
      expect(cli.stdout).toMatch(/^OK\s+node01\s+ssh/m);
      await fresh.closeAll();
    } finally {
      lab.restore();
    }
  });
});

describe('hosts lab: streaming and probe batches', () => {
  it('streams 5 MB from one host into another host’s stdin and into a local file, never in memory, counting bytes', async () => {
    const size = 5_000_000;
    const pass = new PassThrough();
    const seen: number[] = [];
    const [from, to] = await Promise.all([
      pool.get('data1').stream(['sh', '-c', `head -c ${size} /dev/urandom | tee /tmp/enssib-stream.src`], { stdout: pass, onProgress: (n) => seen.push(n) }),
      pool.get('data2').stream(['sh', '-c', 'cat > /tmp/enssib-stream.dst'], { stdin: pass }),
    ]);
    expect([from.exitCode, to.exitCode]).toEqual([0, 0]);
    expect(from.bytes).toBe(size);
    expect(seen.at(-1)).toBe(size);
    expect(seen.length).toBeGreaterThan(1);
    const sum = async (h: string, f: string) => (await pool.get(h).run(['sh', '-c', 'sha256sum < "$1"', 'sh', f])).stdout;
    expect(await sum('data2', '/tmp/enssib-stream.dst')).toBe(await sum('data1', '/tmp/enssib-stream.src'));

    const dir = mkdtempSync(join(tmpdir(), 'enssib-stream-'));
    const local = createWriteStream(join(dir, 'copy'));
    const done = new Promise<void>((res) => local.on('finish', () => res()));
    const r = await pool.get('data1').stream(['cat', '/tmp/enssib-stream.src'], { stdout: local });
    await done;
    expect(r.bytes).toBe(size);
    expect(statSync(join(dir, 'copy')).size).toBe(size);
  });

  it('runs a phase’s checks in one ssh command, each with its own exit code, stdout and stderr', async () => {
    const r = await pool.get('node01').probe([['printf', 'a\nb\n'], ['sh', '-c', 'echo oops >&2; exit 3'], ['hostname'], ['sh', '-c', 'printf "enssib-probe 1 2 3\\n"']]);
    expect(r.map((x) => [x.exitCode, x.stdout, x.stderr])).toEqual([
      [0, 'a\nb\n', ''],
      [3, '', 'oops\n'],
      [0, 'node01\n', ''],
      [0, 'enssib-probe 1 2 3\n', ''],
    ]);
  });
});
