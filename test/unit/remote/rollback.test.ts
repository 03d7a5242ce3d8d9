import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROLLBACK_FIRED_EXIT, armRollbackArgv, disarmRollbackArgv } from '../../../src/remote/rollback.js';

/** The rollback timer's commands, run here with the local sh (as the host runs them). */
const run = (argv: string[]) => spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', timeout: 10_000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('rollback timer', () => {
  it('runs the undo after the delay when nobody disarms it; disarming then says it fired', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-rb-'));
    const mark = join(dir, 'undone');
    const t0 = Date.now();
    expect(run(armRollbackArgv('mtu', 1, ['touch', mark], dir)).status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(1000); // arming returns at once
    expect(existsSync(mark)).toBe(false);
    await sleep(1800);
    expect(existsSync(mark)).toBe(true);
    expect(run(disarmRollbackArgv('mtu', dir)).status).toBe(ROLLBACK_FIRED_EXIT);
  });

  it('does nothing once disarmed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-rb-'));
    const mark = join(dir, 'undone');
    expect(run(armRollbackArgv('routes', 1, ['touch', mark], dir)).status).toBe(0);
    expect(run(disarmRollbackArgv('routes', dir)).status).toBe(0);
    await sleep(1800);
    expect(existsSync(mark)).toBe(false);
  });

  it('refuses an id that is not a plain name, and a delay that is not whole seconds', () => {
    expect(() => armRollbackArgv('../x', 5, ['true'])).toThrow(/letters, digits/);
    expect(() => armRollbackArgv('x', 0.5, ['true'])).toThrow(/whole number/);
    expect(() => armRollbackArgv('x', 5, [])).toThrow(/no undo/);
  });
});
