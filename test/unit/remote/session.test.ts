import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InterruptedError, TimeoutError } from '../../../src/errors.js';
import { SshHost } from '../../../src/remote/ssh.js';

/**
 * A host's long-lived session (SshSession and the SESSION loop), with a
 * stand-in `ssh` first on PATH that runs the line sent with the local sh and
 * logs each start; like a login script, it prints a line before the session's loop
 * (the per-command path has no such tolerance and is tested without it). The
 * hosts lab runs the same loop over real ssh (test/integration/hosts/engine.test.ts).
 */
const target = { name: 'data1', target: 'data1', connectTimeoutS: 1, commandTimeoutS: 5, controlPersistS: 1 };
const PATH = process.env.PATH;
const dir = mkdtempSync(join(tmpdir(), 'enssib-session-'));
const starts = join(dir, 'starts');
writeFileSync(join(dir, 'ssh'), `#!/bin/sh\nfor line; do :; done\necho start >>${starts}\ncase $line in 'exec bash -c'*) echo 'Welcome to data1' ;; esac\nexec sh -c "$line"\n`);
chmodSync(join(dir, 'ssh'), 0o755);
afterEach(() => {
  process.env.PATH = PATH;
});

function host(): SshHost {
  process.env.PATH = `${dir}:${PATH}`;
  writeFileSync(starts, '');
  return new SshHost(target, { controlDir: dir });
}

const sshStarts = () => readFileSync(starts, 'utf8').split('\n').filter(Boolean).length;

const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

async function pidIn(file: string): Promise<number> {
  for (let i = 0; i < 100 && !(existsSync(file) && readFileSync(file, 'utf8').endsWith('\n')); i++) await new Promise((r) => setTimeout(r, 50));
  return Number(readFileSync(file, 'utf8'));
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 40 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  return !alive(pid);
}

describe('a host’s session: one ssh client for the commands of a run', () => {
  it('runs many commands through one ssh client, each with its own exit code, stdout (bytes as they are) and stderr', async () => {
    const h = host();
    expect(await h.exec(['sh', '-c', 'printf "a\\0b\\n"; printf "oops" >&2; exit 3'])).toMatchObject({ exitCode: 3, stdout: 'a\0b\n', stderr: 'oops' });
    expect(await h.exec(['printf', '%s|', "it's", '$(id)', 'two\nlines'])).toMatchObject({ exitCode: 0, stdout: "it's|$(id)|two\nlines|", stderr: '' });
    expect(await h.exec(['true'])).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
    expect(await h.probe([['echo', 'one'], ['sh', '-c', 'echo two >&2; exit 4']])).toMatchObject([
      { exitCode: 0, stdout: 'one\n' },
      { exitCode: 4, stderr: 'two\n' },
    ]);
    expect(sshStarts()).toBe(1);
    await h.close();
  });

  it('a second command while one is in flight takes its own ssh client; commands with input do too', async () => {
    const h = host();
    const [a, b] = await Promise.all([h.exec(['sh', '-c', 'sleep 0.3; echo a']), h.exec(['echo', 'b'])]);
    expect([a.stdout, b.stdout]).toEqual(['a\n', 'b\n']);
    expect((await h.exec(['cat'], { input: 'in' })).stdout).toBe('in');
    expect(sshStarts()).toBe(3);
    await h.close();
  });

  it('stops a command at its deadline on the host and says so; the session goes on', async () => {
    const h = host();
    const t0 = Date.now();
    const r = await h.exec(['sleep', '30'], { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(r).toBeInstanceOf(TimeoutError);
    expect(r).toMatchObject({ stoppedOnHost: true });
    expect(Date.now() - t0).toBeLessThan(3000);
    expect((await h.exec(['echo', 'next'])).stdout).toBe('next\n');
    expect(sshStarts()).toBe(1);
    await h.close();
  });

  it('a cancel stops the command’s process group on the host, then the session goes on', async () => {
    const h = host();
    const pidFile = join(dir, 'cancel.pid');
    const ac = new AbortController();
    const p = h.exec(['sh', '-c', `sleep 30 & echo $! >${pidFile}; wait`], { signal: ac.signal }).catch((e: unknown) => e);
    const child = await pidIn(pidFile);
    ac.abort();
    const r = await p;
    expect(r).toBeInstanceOf(InterruptedError);
    expect((r as Error).message).toContain('(stopped on the host)');
    expect(await gone(child)).toBe(true);
    expect((await h.exec(['echo', 'next'])).stdout).toBe('next\n');
    await h.close();
  });

  it('when enssib goes away (killed), the command in flight is stopped on the host', async () => {
    const pidFile = join(dir, 'orphan.pid');
    const script = join(dir, 'run.mjs');
    const ssh = join(process.cwd(), 'dist/remote/ssh.js');
    writeFileSync(script, `const { SshHost } = await import(${JSON.stringify(ssh)});\nawait new SshHost(${JSON.stringify(target)}, { controlDir: ${JSON.stringify(dir)} }).exec(['sh', '-c', 'sleep 30 & echo $! >${pidFile}; wait']);\n`);
    const child = spawn(process.execPath, [script], { env: { ...process.env, PATH: `${dir}:${PATH}` }, stdio: 'ignore' });
    const sleeper = await pidIn(pidFile);
    expect(alive(sleeper)).toBe(true);
    child.kill('SIGKILL');
    expect(await gone(sleeper)).toBe(true);
  });
});
