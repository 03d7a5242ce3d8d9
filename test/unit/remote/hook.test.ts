import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runHook } from '../../../src/remote/hook.js';

/** Real zx scripts run on this machine (a hook runs where enssib runs). */
describe('runHook: a service hook as zx runs it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-hook-'));
  const script = (name: string, body: string) => {
    const f = join(dir, name);
    writeFileSync(f, body);
    return f;
  };

  it('runs with zx globals, in its folder, with the context in its environment', async () => {
    const f = script('ok.mjs', "const out = await $`printf %s ${process.env.ENSSIB_VOLUME}`;\necho(`${process.cwd()} ${out.stdout} ${process.env.ENSSIB_SERVICE}`);\n");
    const r = await runHook({ script: f, cwd: dir, env: { ENSSIB_VOLUME: 'mail', ENSSIB_SERVICE: 'mail-svc' }, timeoutMs: 30_000 });
    expect(r).toMatchObject({ exitCode: 0, timedOut: false, cancelled: false });
    expect(r.output.at(-1)).toBe(`${dir} mail mail-svc`);
  });

  it('a failing hook: its exit code and what it printed', async () => {
    const f = script('fail.mjs', "console.error('flush: connection refused');\nprocess.exit(3);\n");
    const r = await runHook({ script: f, cwd: dir, env: {}, timeoutMs: 30_000 });
    expect(r).toMatchObject({ exitCode: 3, timedOut: false });
    expect(r.output).toContain('flush: connection refused');
  });

  it('a hook that outlives its time is stopped, with what it started', async () => {
    const f = script('slow.mjs', "await $`sleep 30`;\n");
    const t0 = Date.now();
    const r = await runHook({ script: f, cwd: dir, env: {}, timeoutMs: 1500 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('a hook is stopped, with what it started, when its signal is aborted (a second Ctrl-C)', async () => {
    const pidFile = join(dir, 'child.pid');
    const f = script('hang.mjs', `const p = $\`sleep 30\`;\nawait fs.writeFile(${JSON.stringify(pidFile)}, String(p.child?.pid ?? ''));\nawait p;\n`);
    const ac = new AbortController();
    const t0 = Date.now();
    const running = runHook({ script: f, cwd: dir, env: {}, timeoutMs: 60_000, signal: ac.signal });
    await expect.poll(() => existsSync(pidFile), { timeout: 10_000 }).toBe(true);
    ac.abort();
    const r = await running;
    expect(r).toMatchObject({ cancelled: true, timedOut: false });
    expect(r.exitCode).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    // the sleep it started is gone too (its process group was stopped)
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(pid).toBeGreaterThan(0);
    await expect.poll(() => alive(pid), { timeout: 6_000 }).toBe(false);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
