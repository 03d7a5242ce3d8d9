import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SshHost, SUPERVISOR, parseFrames, probeScript } from '../../../src/remote/ssh.js';

/**
 * The remote supervisor script, run here with the local bash (the hosts lab
 * runs it over ssh): its deadline and its watchdog stop the command's whole
 * process group, and it exits only once they are gone. `shell`: the line as
 * sent (SshHost.supervisedLine) run by that login shell instead.
 */
function supervise(deadline: string, input: Buffer | null, argv: string[], env: NodeJS.ProcessEnv = process.env, shell?: string) {
  const args = [deadline, input ? String(input.length) : '-', ...argv];
  const line = new SshHost({ name: 'h', target: 'h', connectTimeoutS: 1, commandTimeoutS: 5, controlPersistS: 1 }).supervisedLine(argv, {}, Number(deadline) * 1000, input ? input.length : null);
  const child = shell ? spawn(shell, ['-c', line], { stdio: ['pipe', 'pipe', 'pipe'], env }) : spawn('bash', ['-c', SUPERVISOR, 'enssib-run', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  if (input) child.stdin.write(input);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

/** Running (a zombie waiting for a parent that does not reap it is not running). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** Whether the process is gone within a second (a loaded machine delivers signals late). */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 20 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  return !alive(pid);
}

/** A command that starts a grandchild and records its pid. */
function withGrandchild(): { argv: string[]; pid: () => number; started: () => Promise<void> } {
  const f = join(mkdtempSync(join(tmpdir(), 'enssib-sup-')), 'pid');
  return {
    argv: ['sh', '-c', 'sleep 60 & echo $! > "$1.tmp"; mv "$1.tmp" "$1"; wait', 'sh', f],
    pid: () => Number(readFileSync(f, 'utf8').trim()),
    // On a loaded machine the shells take a while to start: wait for the grandchild rather than a fixed time.
    started: async () => {
      for (let i = 0; i < 100 && !existsSync(f); i++) await new Promise((r) => setTimeout(r, 50));
    },
  };
}

const ways: [string, string | undefined][] = [
  ['bash -c SUPERVISOR', undefined],
  ['the line sent, bash the login shell', 'bash'],
  ['the line sent, sh (dash) the login shell', 'sh'],
];

describe.each(ways)('remote supervisor: %s', (_, shell) => {
  it('passes the exit code, stdout and exactly the input bytes; the rest of stdin is not the command’s', async () => {
    const s = supervise('10', Buffer.from('abc'), ['sh', '-c', 'cat; echo; exit 7'], process.env, shell);
    s.child.stdin.write('more');
    const r = await s.done;
    s.child.stdin.end();
    expect(r).toMatchObject({ code: 7, stdout: 'abc\n' });
  });

  it('runs the command under LC_ALL=C whatever the host’s locale (sudo resets the environment: it is set here), and says when it started', async () => {
    const s = supervise('10', null, ['sh', '-c', 'echo "$LC_ALL"; echo oops >&2'], { ...process.env, LC_ALL: 'fr_FR.UTF-8', LANG: 'fr_FR.UTF-8' }, shell);
    const r = await s.done;
    s.child.stdin.end();
    // bash warns as it starts when the locale it inherits is not installed here (a bash login shell on such a host always did).
    const stderr = r.stderr.replace(/^bash: warning: setlocale: .*\n/gm, '');
    expect({ ...r, stderr }).toEqual({ code: 0, stdout: 'C\n', stderr: 'enssib-run: started\noops\n' });
  });

  it('returns at once when the command ends, although its stdin (the watchdog) stays open', async () => {
    const s = supervise('10', null, ['true'], process.env, shell);
    const t0 = Date.now();
    const r = await s.done;
    expect(r.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(2000);
    s.child.stdin.end();
  });

  it('at the deadline kills the whole process group and says so', async () => {
    const g = withGrandchild();
    const s = supervise('2', null, g.argv, process.env, shell);
    const r = await s.done;
    s.child.stdin.end();
    expect(r, r.stderr).toMatchObject({ code: 143, stderr: expect.stringMatching(/^enssib-run: deadline passed: sending signal TERM to the process group of sh$/m) });
    expect(await gone(g.pid())).toBe(true);
  });

  it('when its stdin closes (the ssh client went away, or enssib cancels), kills the group and exits once it is gone', async () => {
    const g = withGrandchild();
    const s = supervise('60', null, g.argv, process.env, shell);
    await g.started();
    const t0 = Date.now();
    s.child.stdin.end();
    const r = await s.done;
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(r.code).not.toBe(0);
    expect(await gone(g.pid())).toBe(true);
  });
});

describe('the line sent', () => {
  it('is run by the login shell itself when that is bash: the command is its child (no second shell on the host)', async () => {
    const s = supervise('10', null, ['sh', '-c', 'tr "\\0" " " </proc/$PPID/cmdline'], process.env, 'bash');
    const r = await s.done;
    s.child.stdin.end();
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^bash -c set -- 10 - sh -c /);
  });
});

describe('remote supervisor and a command that ignores SIGTERM', () => {
  it('kills it 5 s after the cancel', async () => {
    const s = supervise('60', null, ['sh', '-c', 'trap "" TERM; sleep 60 & wait; wait']);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    s.child.stdin.end();
    const r = await s.done;
    expect(Date.now() - t0).toBeGreaterThan(4000);
    expect(Date.now() - t0).toBeLessThan(9000);
    expect(r.code).toBe(137);
  });
});

describe('probe batches', () => {
  it('frames each check by byte counts: multibyte text, empty output, non-zero exits, trailing newlines kept', async () => {
    const checks = [['printf', 'ünï ✓\n\n'], ['sh', '-c', 'echo err >&2; exit 5'], ['true'], ['sh', '-c', 'printf "enssib-probe 0 0 0\\n"']];
    const script = probeScript(checks);
    const out = await new Promise<Buffer>((resolve) => {
      const c = spawn('sh', ['-c', script, 'enssib-probes']);
      const parts: Buffer[] = [];
      c.stdout.on('data', (b: Buffer) => parts.push(b));
      c.on('close', () => resolve(Buffer.concat(parts)));
    });
    expect(parseFrames(out, 4)).toEqual([
      { exitCode: 0, stdout: 'ünï ✓\n\n', stderr: '' },
      { exitCode: 5, stdout: '', stderr: 'err\n' },
      { exitCode: 0, stdout: '', stderr: '' },
      { exitCode: 0, stdout: 'enssib-probe 0 0 0\n', stderr: '' },
    ]);
    expect(parseFrames(out, 5)).toBeNull();
    expect(parseFrames(out.subarray(0, out.length - 1), 4)).toBeNull();
  });
});

describe('remote supervisor, streamed input', () => {
  it('gives all of stdin to the command (its end is the end of the data), with no watchdog', async () => {
    const child = spawn('bash', ['-c', SUPERVISOR, 'enssib-run', '10', 'stream', 'wc', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const done = new Promise<number | null>((resolve) => child.on('close', resolve));
    child.stdin.write(Buffer.alloc(100_000, 1));
    child.stdin.end(Buffer.alloc(23, 2));
    expect(await done).toBe(0);
    expect(out.trim()).toBe('100023');
  });
});
