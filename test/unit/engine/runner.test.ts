import { describe, expect, it } from 'vitest';
import { ConnectionError, ExitCode } from '../../../src/errors.js';
import { runPlan } from '../../../src/engine/runner.js';
import type { Plan } from '../../../src/engine/types.js';
import { fakePool } from '../../support/fake-hosts.js';

const opts = (pool: ReturnType<typeof fakePool>, mode: 'apply' | 'client' | 'server' = 'apply') => ({ mode, concurrency: 4, hosts: pool });

function twoPhases(): Plan {
  return {
    title: 'demo',
    mutating: true,
    phases: [
      {
        title: 'create',
        hosts: ['data1'],
        checks: () => [['test', '-e', '/dev/vg/x']],
        plan: (_h, facts) => (facts && facts[0]?.exitCode === 0 ? [] : [{ kind: 'command', argv: ['lvcreate', '-n', 'x', 'vg'] }]),
        undo: () => [{ kind: 'command', argv: ['lvremove', '-y', 'vg/x'] }],
      },
      {
        title: 'export',
        hosts: ['data1', 'data2'],
        plan: (h) => [{ kind: 'file', file: { path: '/etc/x.conf', content: `on ${h}\n` } }],
        undo: () => [{ kind: 'command', argv: ['rm', '-f', '/etc/x.conf'] }],
      },
    ],
  };
}

describe('runPlan', () => {
  it('a client dry run contacts nothing and lists checks and actions', async () => {
    const pool = fakePool();
    const r = await runPlan(twoPhases(), opts(pool, 'client'));
    expect(pool.host('data1').calls).toEqual([]);
    expect(r.phases[0]?.hosts[0]).toMatchObject({ status: 'planned', checks: ['test -e /dev/vg/x'], actions: ['lvcreate -n x vg'] });
    expect(r.phases[1]?.hosts.map((h) => h.actions[0])).toEqual([
      expect.stringMatching(/^write \/etc\/x\.conf \(mode 0644, owner root:root, 9 bytes, sha256 [0-9a-f]{12}…\)$/),
      expect.stringMatching(/^write \/etc\/x\.conf/),
    ]);
    expect(r.exitCode).toBe(ExitCode.ok);
  });

  it('a server dry run runs only the checks', async () => {
    const pool = fakePool(() => ({ exitCode: 1 }));
    const r = await runPlan(twoPhases(), opts(pool, 'server'));
    expect(pool.host('data1').calls).toEqual([['test', '-e', '/dev/vg/x']]);
    expect(r.phases[0]?.hosts[0]?.status).toBe('would-change');
  });

  it('runs, then converges: a second run changes nothing', async () => {
    let exists = false;
    const pool = fakePool((_h, argv) => {
      if (argv[0] === 'test') return { exitCode: exists ? 0 : 1 };
      if (argv[0] === 'lvcreate') exists = true;
      return undefined;
    });
    const first = await runPlan(twoPhases(), opts(pool));
    expect(first.phases.flatMap((p) => p.hosts.map((h) => h.status))).toEqual(['done', 'done', 'done']);
    const second = await runPlan(twoPhases(), opts(pool));
    expect(second.phases.flatMap((p) => p.hosts.map((h) => h.status))).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(second.exitCode).toBe(0);
  });

  it('undoes earlier phases, newest first, when a phase fails', async () => {
    const pool = fakePool((h, argv) => {
      if (argv[0] === 'test') return { exitCode: 1 };
      if (h === 'data2' && argv[0] === 'boom') return { exitCode: 3, stderr: 'target busy\n' };
      return undefined;
    });
    const plan = twoPhases();
    plan.phases.push({ title: 'fail', hosts: ['data2'], plan: () => [{ kind: 'command', argv: ['boom'] }] });
    const r = await runPlan(plan, opts(pool));
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.stoppedAt).toBe('fail');
    expect(r.phases[2]?.hosts[0]).toMatchObject({ status: 'failed', error: { command: 'boom', remoteExitCode: 3, exitCode: 1, details: ['target busy'] } });
    expect(r.undo.map((u) => `${u.phase}/${u.host}/${u.ok}`)).toEqual(['export/data1/true', 'export/data2/true', 'create/data1/true']);
    expect(pool.host('data1').calls.at(-1)).toEqual(['lvremove', '-y', 'vg/x']);
  });

  it('says what is left where when an undo step fails', async () => {
    const pool = fakePool((_h, argv) => {
      if (argv[0] === 'test') return { exitCode: 1 };
      if (argv[0] === 'lvremove') return { exitCode: 5, stderr: 'Logical volume in use\n' };
      if (argv[0] === 'boom') return { exitCode: 1 };
      return undefined;
    });
    const plan = twoPhases();
    plan.phases.push({ title: 'fail', hosts: ['data1'], plan: () => [{ kind: 'command', argv: ['boom'] }] });
    const r = await runPlan(plan, opts(pool));
    const failedUndo = r.undo.find((u) => !u.ok);
    expect(failedUndo).toMatchObject({ phase: 'create', host: 'data1', actions: ['lvremove -y vg/x'], left: ['lvcreate -n x vg'], error: { remoteExitCode: 5 } });
  });

  it('keeps going on other hosts and reports a partial failure', async () => {
    const pool = fakePool((h) => (h === 'node02' ? new ConnectionError('node02', 'connection refused by node02') : undefined));
    const plan: Plan = {
      title: 'fan-out',
      mutating: true,
      phases: [
        { title: 'discover', hosts: ['node01', 'node02', 'node03'], continueOnError: true, plan: () => [{ kind: 'command', argv: ['true'] }] },
        { title: 'after', hosts: ['node01', 'node02', 'node03'], plan: () => [{ kind: 'command', argv: ['true'] }] },
      ],
    };
    const r = await runPlan(plan, opts(pool));
    expect(r.exitCode).toBe(ExitCode.partial);
    expect(r.phases[0]?.hosts.map((h) => h.status)).toEqual(['done', 'failed', 'done']);
    expect(r.phases[1]?.hosts.map((h) => h.status)).toEqual(['done', 'skipped', 'done']);
    expect(r.undo).toEqual([]);
  });

  it('runs hosts in parallel under the concurrency limit', async () => {
    let running = 0;
    let peak = 0;
    const pool = fakePool();
    const hosts = Array.from({ length: 12 }, (_, i) => `node${String(i + 1).padStart(2, '0')}`);
    const plan: Plan = {
      title: 'p',
      mutating: false,
      phases: [
        {
          title: 'sleep',
          hosts,
          plan: () => [
            {
              kind: 'task',
              label: 'sleep',
              lines: [],
              run: async () => {
                running++;
                peak = Math.max(peak, running);
                await new Promise((r) => setTimeout(r, 30));
                running--;
                return { changed: true };
              },
            },
          ],
        },
      ],
    };
    await runPlan(plan, { ...opts(pool), concurrency: 5 });
    expect(peak).toBe(5);
  });

  it('a refusal thrown by a plan fails that host with its message', async () => {
    const pool = fakePool(() => ({ stdout: 'Secondary/Primary\n' }));
    const plan: Plan = {
      title: 'p',
      mutating: true,
      phases: [
        {
          title: 'facts',
          hosts: ['data1'],
          checks: () => [['drbdadm', 'role', 'r0']],
          plan: (_h, facts) => {
            if (facts?.[0]?.stdout.startsWith('Secondary')) throw new ConnectionError('data1', 'refused: not primary');
            return [];
          },
        },
      ],
    };
    const r = await runPlan(plan, opts(pool));
    expect(r.phases[0]?.hosts[0]?.error?.message).toBe('data1: refused: not primary');
    expect(r.exitCode).toBe(ExitCode.failed);
  });

  it('an aborted run stops before the next phase with the interrupted code', async () => {
    const ac = new AbortController();
    const pool = fakePool(() => {
      ac.abort();
      return undefined;
    });
    const r = await runPlan(twoPhases(), { ...opts(pool), signal: ac.signal });
    expect(r.exitCode).toBe(ExitCode.interrupted);
    expect(r.phases).toHaveLength(1);
    expect(r.undo).toEqual([]);
  });
});
