import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { whenAborted } from '../../../src/remote/abort.js';
import { SshHost } from '../../../src/remote/ssh.js';

/** The warnings Node emits while fn runs (a MaxListenersExceededWarning comes a tick after the 11th listener). */
async function warnings(fn: () => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  const on = (w: Error) => seen.push(`${w.name}: ${w.message}`);
  process.on('warning', on);
  try {
    await fn();
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('warning', on);
  }
  return seen;
}

describe('whenAborted', () => {
  it('many waiters on one signal: one listener on it, each waiter called once, a waiter that stopped waiting not at all', async () => {
    const ac = new AbortController();
    const calls: number[] = [];
    const seen = await warnings(async () => {
      const stops = Array.from({ length: 50 }, (_, i) => whenAborted(ac.signal, () => calls.push(i)));
      stops[7]?.();
      ac.abort();
      ac.abort();
    });
    expect(seen).toEqual([]);
    expect(calls).toEqual(Array.from({ length: 50 }, (_, i) => i).filter((i) => i !== 7));
  });

  it('an aborted signal calls at once', () => {
    const ac = new AbortController();
    ac.abort();
    let called = 0;
    whenAborted(ac.signal, () => called++);
    expect(called).toBe(1);
  });
});

describe('twenty commands in flight on one interruption signal', () => {
  const PATH = process.env.PATH;
  afterEach(() => {
    process.env.PATH = PATH;
  });

  it('add one abort listener, not one each (no MaxListenersExceededWarning), and all are cancelled', async () => {
    // A stand-in ssh that runs the line sent with the local sh.
    const dir = mkdtempSync(join(tmpdir(), 'enssib-fake-ssh-'));
    writeFileSync(join(dir, 'ssh'), '#!/bin/sh\nfor line; do :; done\nexec sh -c "$line"\n');
    chmodSync(join(dir, 'ssh'), 0o755);
    process.env.PATH = `${dir}:${PATH}`;
    const ac = new AbortController();
    let results: unknown[] = [];
    const seen = await warnings(async () => {
      const runs = Array.from({ length: 20 }, (_, i) => new SshHost({ name: `node${i}`, target: `node${i}`, connectTimeoutS: 1, commandTimeoutS: 30, controlPersistS: 1 }, { share: false }).exec(['sleep', '20'], { signal: ac.signal }).catch((e: unknown) => e));
      await new Promise((r) => setTimeout(r, 500));
      ac.abort();
      results = await Promise.all(runs);
    });
    expect(seen.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
    expect(results.map((e) => (e as Error).message)).toEqual(Array.from({ length: 20 }, (_, i) => `node${i}: cancelled: sleep 20 (stopped on the host)`));
  });
});
