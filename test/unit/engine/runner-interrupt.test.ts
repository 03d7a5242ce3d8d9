import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../../src/engine/events.js';
import { runPlan, type RunnerOptions } from '../../../src/engine/runner.js';
import type { Plan } from '../../../src/engine/types.js';
import { ExitCode } from '../../../src/errors.js';
import { fakePool } from '../../support/fake-hosts.js';

/** Interruption, undo that throws, server dry runs and exit codes in the runner (fake hosts). */
type Pool = ReturnType<typeof fakePool>;
const opts = (pool: Pool, more: Partial<RunnerOptions> = {}): RunnerOptions => ({ mode: 'apply', concurrency: 4, hosts: pool, ...more });

function volumeLike(): Plan {
  return {
    title: 'volume',
    mutating: true,
    phases: [
      { title: 'lock', hosts: ['data1'], independent: true, plan: () => [{ kind: 'command', argv: ['lock'], interruptible: true }] },
      {
        title: 'lv',
        hosts: ['data1'],
        checks: () => [['lvs']],
        plan: () => [{ kind: 'command', argv: ['lvcreate'] }],
        undoChecks: () => [['lvs']],
        undo: (_h, _s, facts) => (facts?.[0]?.stdout.includes('mail') ? [{ kind: 'command', argv: ['lvremove'] }] : []),
        undoFailed: true,
      },
      {
        title: 'export',
        hosts: ['data1', 'data2'],
        checks: () => [['cat', '/etc/scst.conf']],
        plan: () => [
          { kind: 'command', argv: ['edit'] },
          { kind: 'command', argv: ['apply'] },
        ],
        undo: () => [{ kind: 'command', argv: ['unexport'] }],
      },
      { title: 'verify', hosts: ['node01'], checks: () => [['multipath']], plan: (_h, facts) => (facts?.[0]?.stdout === 'ok' ? [] : [{ kind: 'command', argv: ['fix'] }]) },
    ],
    always: [{ title: 'unlock', hosts: ['data1'], plan: () => [{ kind: 'command', argv: ['unlock'] }] }],
  };
}

describe('interruption', () => {
  it('first interruption: the command in flight finishes, no new one starts, what was done is undone (from facts read again), cleanup runs, exit 130', async () => {
    const ac = new AbortController();
    let lv = false;
    const pool = fakePool(async (_h, argv) => {
      if (argv[0] === 'lvcreate') {
        ac.abort(); // Ctrl-C while lvcreate runs
        await new Promise((r) => setTimeout(r, 20));
        lv = true;
      }
      if (argv[0] === 'lvs') return { stdout: lv ? 'mail' : '' };
      return undefined;
    });
    const r = await runPlan(volumeLike(), opts(pool, { signal: ac.signal }));
    expect(r.exitCode).toBe(ExitCode.interrupted);
    expect(r.interrupted).toBe(true);
    expect(r.stoppedAt).toBe('lv');
    expect(pool.host('data1').calls).toEqual([['lock'], ['lvs'], ['lvcreate'], ['lvs'], ['lvremove'], ['unlock']]);
    expect(pool.host('data2').calls).toEqual([]);
    expect(r.undo).toEqual([expect.objectContaining({ phase: 'lv', host: 'data1', ok: true, actions: ['lvremove'] })]);
  });

  it('first interruption while waiting for the lock: the wait is cancelled, nothing else runs but the cleanup', async () => {
    const ac = new AbortController();
    const pool = fakePool((_h, argv) => {
      if (argv[0] === 'lock') {
        setTimeout(() => ac.abort(), 5);
        return new Promise(() => undefined); // waits for ever
      }
      return undefined;
    });
    const r = await runPlan(volumeLike(), opts(pool, { signal: ac.signal }));
    expect(r.exitCode).toBe(ExitCode.interrupted);
    expect(r.phases[0]?.hosts[0]).toMatchObject({ status: 'failed', error: { exitCode: ExitCode.interrupted } });
    expect(pool.host('data1').calls).toEqual([['lock'], ['unlock']]);
    expect(r.undo).toEqual([]);
  });

  it('second interruption: the command in flight is cancelled; the undo decides from facts read again; cleanup runs', async () => {
    const first = new AbortController();
    const second = new AbortController();
    const pool = fakePool((_h, argv) => {
      if (argv[0] === 'lvcreate') {
        setTimeout(() => first.abort(), 5);
        setTimeout(() => second.abort(), 10);
        return new Promise(() => undefined);
      }
      return undefined;
    });
    const r = await runPlan(volumeLike(), opts(pool, { signal: first.signal, cancel: second.signal }));
    expect(r.exitCode).toBe(ExitCode.interrupted);
    expect(r.phases[1]?.hosts[0]).toMatchObject({ status: 'failed', error: { message: 'data1: cancelled: lvcreate' } });
    // lvs says no LV: nothing to remove
    expect(pool.host('data1').calls).toEqual([['lock'], ['lvs'], ['lvcreate'], ['lvs'], ['unlock']]);
    expect(r.undo).toEqual([expect.objectContaining({ phase: 'lv', ok: true, actions: [] })]);
  });

  it('an interruption between two actions of a host: the host did part of its work, so it is undone', async () => {
    const ac = new AbortController();
    const pool = fakePool((h, argv) => {
      if (argv[0] === 'lvs') return { stdout: 'mail' };
      if (h === 'data2' && argv[0] === 'edit') ac.abort();
      return undefined;
    });
    const r = await runPlan(volumeLike(), opts(pool, { concurrency: 1, signal: ac.signal }));
    expect(r.phases[2]?.hosts.map((h) => [h.host, h.status, h.partial])).toEqual([
      ['data1', 'done', undefined],
      ['data2', 'failed', true],
    ]);
    expect(r.undo.map((u) => `${u.phase}/${u.host}`)).toEqual(['export/data1', 'export/data2', 'lv/data1']);
  });
});

describe('exit codes: a remote command exit code is not enssib’s', () => {
  it('a remote command exiting 130 is a failure that is undone, not an interruption', async () => {
    const pool = fakePool((_h, argv) => {
      if (argv[0] === 'lvs') return { stdout: 'mail' };
      if (argv[0] === 'apply') return { exitCode: 130, stderr: 'killed by its own SIGINT\n' };
      return undefined;
    });
    const r = await runPlan(volumeLike(), opts(pool));
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.interrupted).toBeUndefined();
    expect(r.phases[2]?.hosts[0]?.error).toMatchObject({ remoteExitCode: 130, exitCode: ExitCode.failed, command: 'apply' });
    expect(r.undo.map((u) => `${u.phase}/${u.host}/${u.ok}`)).toEqual(['export/data1/true', 'export/data2/true', 'lv/data1/true']);
  });
});

describe('an undo that throws', () => {
  it('is reported with what is left where; the other undo steps, the cleanup and the report still happen', async () => {
    const plan = volumeLike();
    const exp = plan.phases[2];
    if (exp) {
      exp.undo = (h) => {
        if (h === 'data2') throw new Error('cannot parse iscsiadm -m session');
        return [{ kind: 'command', argv: ['unexport'] }];
      };
    }
    const pool = fakePool((_h, argv) => {
      if (argv[0] === 'lvs') return { stdout: 'mail' };
      if (argv[0] === 'fix') return { exitCode: 1 };
      return undefined;
    });
    const r = await runPlan(plan, opts(pool));
    expect(r.exitCode).toBe(ExitCode.failed);
    const bad = r.undo.find((u) => !u.ok);
    expect(bad).toMatchObject({ phase: 'export', host: 'data2', left: ['edit', 'apply'], error: { message: 'internal error: cannot parse iscsiadm -m session' } });
    expect(r.undo.map((u) => `${u.phase}/${u.host}/${u.ok}`)).toEqual(['export/data1/true', 'export/data2/false', 'lv/data1/true']);
    expect(pool.host('data1').calls.at(-1)).toEqual(['unlock']);
  });

  it('undo checks that fail are reported as a failed undo, never as an escape', async () => {
    const pool = fakePool((_h, argv) => {
      if (argv[0] === 'lvs') return new Error('connection lost');
      if (argv[0] === 'apply') return { exitCode: 1 };
      return undefined;
    });
    const plan = volumeLike();
    const lv = plan.phases[1];
    if (lv) delete lv.checks;
    const r = await runPlan(plan, opts(pool));
    expect(r.undo.find((u) => u.phase === 'lv')).toMatchObject({ ok: false, left: ['lvcreate'], error: { message: 'internal error: connection lost' } });
    expect(pool.host('data1').calls.at(-1)).toEqual(['unlock']);
  });

  it('a broken progress renderer cannot keep the cleanup from running', async () => {
    const pool = fakePool();
    const r = await runPlan(volumeLike(), opts(pool, { observer: { event: (e: RunEvent) => { if (e.type === 'phase-end' && e.outcome.id === 'lv') throw new Error('render'); } } }));
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(pool.host('data1').calls.at(-1)).toEqual(['unlock']);
    expect(r.phases.at(-1)).toMatchObject({ title: 'internal error', hosts: [{ error: { message: 'internal error: render' } }] });
  });
});

describe('server dry run', () => {
  it('plans from facts up to the first phase that would change something; later phases are known after apply (a lock does not count)', async () => {
    const plans: string[] = [];
    const plan = volumeLike();
    for (const p of plan.phases) {
      const inner = p.plan;
      p.plan = (h, f, s) => {
        plans.push(`${p.title}/${h}`);
        return inner?.(h, f, s) ?? [];
      };
    }
    const pool = fakePool();
    const r = await runPlan(plan, opts(pool, { mode: 'server' }));
    expect(r.exitCode).toBe(ExitCode.ok);
    expect(plans).toEqual(['lock/data1', 'lv/data1']);
    expect(r.phases.map((p) => p.hosts.map((h) => h.status).join(','))).toEqual(['would-change', 'would-change', 'after-apply,after-apply', 'after-apply', 'would-change']);
    expect(r.phases[2]?.hosts[0]).toMatchObject({ checks: ['cat /etc/scst.conf'], note: 'known after apply: it depends on "lv"' });
    expect(pool.host('data1').calls).toEqual([['lvs']]);
    expect(pool.host('node01').calls).toEqual([]);
  });

  it('a phase with nothing to change keeps the next one planned from facts', async () => {
    const pool = fakePool((_h, argv) => (argv[0] === 'multipath' ? { stdout: 'ok' } : undefined));
    const plan = volumeLike();
    plan.phases.splice(1, 2);
    const r = await runPlan(plan, opts(pool, { mode: 'server' }));
    expect(r.phases.map((p) => p.hosts.map((h) => h.status).join(','))).toEqual(['would-change', 'unchanged', 'would-change']);
  });
});
