import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TimeoutError } from '../../../src/errors.js';
import { SshHost } from '../../../src/remote/ssh.js';

/**
 * The client's side of a command's deadline, with a stand-in `ssh` first on
 * PATH: a "host" that runs the line sent with the local sh (a live host, the
 * same supervisor as over ssh), or one that never answers (frozen, its
 * packets dropped). The hosts lab does the same over real ssh with a paused
 * container (test/integration/hosts/engine.test.ts).
 */
const target = { name: 'data1', target: 'data1', connectTimeoutS: 1, commandTimeoutS: 5, controlPersistS: 1 };
const PATH = process.env.PATH;
afterEach(() => {
  process.env.PATH = PATH;
});

/** Puts a stand-in ssh first on PATH; its body gets the line sent as "$line". */
function fakeSsh(body: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-fake-ssh-'));
  writeFileSync(join(dir, 'ssh'), `#!/bin/sh\nfor line; do :; done\n${body}\n`);
  chmodSync(join(dir, 'ssh'), 0o755);
  process.env.PATH = `${dir}:${PATH}`;
}

async function timed<T>(p: Promise<T>): Promise<{ value: T | unknown; ms: number }> {
  const t0 = Date.now();
  const value = await p.catch((e: unknown) => e);
  return { value, ms: Date.now() - t0 };
}

const host = () => new SshHost(target, { share: false });

describe('a command’s deadline, seen from the client', () => {
  it('a host that does not answer at all is reported 2 s after the deadline, as not answering', async () => {
    fakeSsh('exec sleep 600');
    const r = await timed(host().exec(['true'], { timeoutMs: 1000 }));
    expect(r.value).toBeInstanceOf(TimeoutError);
    expect(r.value).toMatchObject({ stoppedOnHost: false, message: 'data1: no answer after 1 s' });
    expect(r.ms).toBeGreaterThanOrEqual(2900);
    expect(r.ms).toBeLessThan(5000);
  });

  it('a host that froze once the command started is reported 2 s after the command’s deadline', async () => {
    fakeSsh("echo 'enssib-run: started' >&2; exec sleep 600");
    const r = await timed(host().exec(['true'], { timeoutMs: 1000 }));
    expect(r.value).toMatchObject({ stoppedOnHost: false, message: 'data1: no answer after 1 s' });
    expect(r.ms).toBeLessThan(5000);
  });

  it('a live host stops the command at the deadline and says so', async () => {
    fakeSsh('exec sh -c "$line"');
    const r = await timed(host().exec(['sleep', '30'], { timeoutMs: 1000 }));
    expect(r.value).toMatchObject({ stoppedOnHost: true, message: 'data1: stopped after 1 s (time limit)' });
    expect(r.ms).toBeLessThan(3000);
  });

  it('the deadline counts from the command’s start on the host (a slow login is not a frozen host)', async () => {
    // Counted from the spawn, the client would give up at 4 s (deadline + 2 s); the login takes 2.5 s, the command 2 s more.
    fakeSsh('sleep 2.5; exec sh -c "$line"');
    const r = await timed(host().exec(['sleep', '30'], { timeoutMs: 2000 }));
    expect(r.value).toMatchObject({ stoppedOnHost: true });
    expect(r.ms).toBeGreaterThanOrEqual(4400);
  });

  it('a command that ignores SIGTERM: the client waits for the SIGKILL 5 s later, then it is stopped on the host', async () => {
    fakeSsh('exec sh -c "$line"');
    const r = await timed(host().exec(['sh', '-c', 'trap "" TERM; sleep 30'], { timeoutMs: 1000 }));
    expect(r.value).toMatchObject({ stoppedOnHost: true });
    expect(r.ms).toBeGreaterThan(5500);
    expect(r.ms).toBeLessThan(9000);
  }, 15_000);

  it('the supervisor’s own line is not the command’s stderr, also after what sudo printed first', async () => {
    fakeSsh('exec sh -c "$line"');
    const r = await host().exec(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
    fakeSsh('echo "sudo: unable to resolve host data1" >&2; exec sh -c "$line"');
    expect(await host().exec(['sh', '-c', 'echo err >&2'])).toMatchObject({ exitCode: 0, stderr: 'sudo: unable to resolve host data1\nerr\n' });
  });
});
