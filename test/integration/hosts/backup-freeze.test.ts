import { execa } from 'execa';
import { chmodSync, copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt } from '../../support/cli.js';
import { volumeLab } from './volume-lab.js';

/**
 * The filesystem freeze of `backup snapshot` must end by itself if enssib dies:
 * a real enssib plan (freeze-child.mjs: the quiesce phases over real OpenSSH)
 * arms the thaw timer on node01 and freezes, then is SIGKILLed while "taking
 * the snapshot". `fsfreeze` is a STAND-IN (stand-ins/fsfreeze.sh: a container
 * cannot freeze a filesystem); the timer — setsid, sleep, the flag file in /run —
 * is the real one, on the real host.
 */
const v = volumeLab();
const STAND_IN = join(v.lab.standIns, 'fsfreeze');
const MP = '/srv/enssib-kvol';
const SECONDS = 5;

const state = () => v.exec('node01', `[ -e /var/lib/enssib-stand-in/fsfreeze/${MP.replaceAll('/', '_')} ] && echo frozen || echo thawed`).trim();
const log = () => v.exec('node01', 'cat /var/log/enssib-fsfreeze.log 2>/dev/null || true').trim().split('\n').filter(Boolean);

async function until(what: string, cond: () => boolean, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return Date.now() - t0;
}

beforeAll(() => {
  assertBuilt();
  copyFileSync(join(import.meta.dirname, 'stand-ins', 'fsfreeze.sh'), STAND_IN);
  chmodSync(STAND_IN, 0o755);
  v.exec('node01', `rm -rf /var/lib/enssib-stand-in/fsfreeze /var/log/enssib-fsfreeze.log /run/enssib-rollback.thaw-kvol; mkdir -p ${MP}`);
});
afterAll(() => {
  // The timer's later thaws (every 5 s for 30 s) would still be running: stop them (this test's only).
  // ([e]: the pattern does not match this shell's own command line.)
  v.exec('node01', 'for p in $(pgrep -f "[e]nssib-thaw"); do pkill -P "$p"; kill "$p"; done; true');
  rmSync(STAND_IN, { force: true });
  v.exec('node01', `rm -rf /var/lib/enssib-stand-in/fsfreeze ${MP}`);
});

describe('backup freeze: the thaw timer on the worker', () => {
  it('enssib SIGKILLed after the freeze: the worker thaws the filesystem by itself after the bound', async () => {
    const child = execa('node', [join(import.meta.dirname, 'freeze-child.mjs'), v.lab.inventoryFile, 'node01', MP, String(SECONDS)], { reject: false, env: { NO_COLOR: '1' } });
    await until('the freeze on node01', () => state() === 'frozen', 60_000);
    const frozenAt = Date.now();
    expect(v.exec('node01', 'ls /run/enssib-rollback.thaw-kvol').trim()).toBe('/run/enssib-rollback.thaw-kvol');
    child.kill('SIGKILL');
    const r = await child;
    expect(r.signal).toBe('SIGKILL');
    // Still frozen for a while (nobody thawed it at once), then thawed by the timer within the bound (plus the ssh round trips).
    await new Promise((res) => setTimeout(res, 1000));
    expect(state()).toBe('frozen');
    await until('the thaw by the timer', () => state() === 'thawed', (SECONDS + 10) * 1000);
    const took = Date.now() - frozenAt;
    expect(took).toBeLessThan((SECONDS + 10) * 1000);
    const lines = log();
    expect(lines.filter((l) => / -f /.test(l))).toHaveLength(1);
    expect(lines.find((l) => / -u /.test(l))).toMatch(new RegExp(` -u ${MP} ok$`));
    // The timer fired (its flag file is gone) and its later thaws find nothing frozen.
    expect(v.exec('node01', 'ls /run/enssib-rollback.thaw-kvol 2>/dev/null || echo gone').trim()).toBe('gone');
    // The sleep enssib was running as the "snapshot" was stopped on the host when its connection went away.
    await until('the orphaned command to stop', () => !v.exec('node01', 'ps -eo args').split('\n').some((l) => l === 'sleep 600'), 30_000);
  }, 120_000);
});
