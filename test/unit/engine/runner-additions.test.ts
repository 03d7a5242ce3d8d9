import { describe, expect, it } from 'vitest';
import { runPlan } from '../../../src/engine/runner.js';
import type { Plan } from '../../../src/engine/types.js';
import { fakePool } from '../../support/fake-hosts.js';

/** The engine additions the volume commands use: cleanup phases, undo of failed hosts, state.undone, prefetch. */
const opts = (pool: ReturnType<typeof fakePool>, mode: 'apply' | 'client' | 'server' = 'apply', signal?: AbortSignal) => ({
  mode,
  concurrency: 4,
  hosts: pool,
  ...(signal ? { signal } : {}),
});

function plan(over: Partial<Plan> = {}): Plan {
  return {
    title: 't',
    mutating: true,
    phases: [
      { title: 'lock', hosts: ['data1'], plan: () => [{ kind: 'command', argv: ['lock'] }] },
      {
        title: 'two steps',
        hosts: ['data1', 'data2'],
        plan: () => [
          { kind: 'command', argv: ['step1'] },
          { kind: 'command', argv: ['step2'] },
        ],
        undo: (h, state) => [{ kind: 'command', argv: ['undo-steps', h, String(state.undone?.length ?? -1)] }],
        undoFailed: true,
      },
      { title: 'last', hosts: ['node01'], plan: () => [{ kind: 'command', argv: ['last'] }] },
    ],
    always: [{ title: 'unlock', hosts: ['data1'], plan: () => [{ kind: 'command', argv: ['unlock'] }] }],
    prefetch: ['node01'],
    ...over,
  };
}

describe('runner additions', () => {
  it('a phase\u2019s checksTimeoutMs is the time limit of its checks on each host; other phases keep the session\u2019s', async () => {
    const pool = fakePool();
    const p: Plan = {
      title: 't',
      mutating: false,
      phases: [
        { title: 'long read', hosts: ['data1', 'data2'], checks: () => [['sha256sum', '--', '/srv/a'], ['sha256sum', '--', '/srv/b']], checksTimeoutMs: 7_200_000 },
        { title: 'quick read', hosts: ['data1'], checks: () => [['cat', '/proc/uptime']] },
      ],
    };
    const r = await runPlan(p, opts(pool, 'server'));
    expect(r.exitCode).toBe(0);
    expect(pool.host('data1').calls).toEqual([['sha256sum', '--', '/srv/a'], ['sha256sum', '--', '/srv/b'], ['cat', '/proc/uptime']]);
    expect(pool.host('data1').timeouts).toEqual([7_200_000, 7_200_000, undefined]);
    expect(pool.host('data2').timeouts).toEqual([7_200_000, 7_200_000]);
  });

  it('runs the always phases after success, and prefetches later hosts first', async () => {
    const pool = fakePool();
    const r = await runPlan(plan(), opts(pool));
    expect(r.exitCode).toBe(0);
    expect(r.phases.map((p) => p.title)).toEqual(['lock', 'two steps', 'last', 'unlock']);
    expect(pool.host('node01').calls).toEqual([['true'], ['last']]);
    expect(pool.host('data1').calls.at(-1)).toEqual(['unlock']);
  });

  it('undoes the hosts that failed half way when the phase says so, newest first, then runs the always phases', async () => {
    const pool = fakePool((h, argv) => (h === 'data2' && argv[0] === 'step2' ? { exitCode: 1, stderr: 'boom' } : undefined));
    const r = await runPlan(plan(), opts(pool));
    expect(r.stoppedAt).toBe('two steps');
    // data1 (done) and data2 (failed after step1) are both undone; each undo sees the ones before it
    expect(r.undo.map((u) => [u.host, u.ok])).toEqual([
      ['data1', true],
      ['data2', true],
    ]);
    expect(pool.host('data1').calls).toContainEqual(['undo-steps', 'data1', '0']);
    expect(pool.host('data2').calls).toContainEqual(['undo-steps', 'data2', '1']);
    expect(pool.host('data1').calls.at(-1)).toEqual(['unlock']);
    expect(pool.host('node01').calls).toEqual([['true']]); // prefetched, never reached
  });

  it('without undoFailed, a host that failed at its first action is not undone; one that did part of its actions is', async () => {
    for (const [failing, undone] of [
      ['step1', ['data1']],
      ['step2', ['data1', 'data2']],
    ] as const) {
      const p = plan();
      const phase = p.phases[1];
      if (phase) delete phase.undoFailed;
      const pool = fakePool((h, argv) => (h === 'data2' && argv[0] === failing ? { exitCode: 1 } : undefined));
      const r = await runPlan(p, opts(pool));
      expect(r.undo.map((u) => u.host)).toEqual(undone);
      expect(r.phases[1]?.hosts[1]?.partial).toBe(failing === 'step2' ? true : undefined);
    }
  });

  it('runs the always phases after an interruption too', async () => {
    const ac = new AbortController();
    const pool = fakePool((_h, argv) => {
      if (argv[0] === 'lock') ac.abort();
      return undefined;
    });
    const r = await runPlan(plan(), opts(pool, 'apply', ac.signal));
    expect(r.exitCode).toBe(130);
    expect(pool.host('data1').calls.at(-1)).toEqual(['unlock']);
    expect(r.undo).toEqual([]);
  });

  it('a client dry run lists the always phases and contacts nothing (no prefetch)', async () => {
    const pool = fakePool();
    const r = await runPlan(plan(), opts(pool, 'client'));
    expect(r.phases.at(-1)?.hosts[0]).toMatchObject({ status: 'planned', actions: ['unlock'] });
    expect(pool.host('node01').calls).toEqual([]);
    expect(pool.host('data1').calls).toEqual([]);
  });
});
