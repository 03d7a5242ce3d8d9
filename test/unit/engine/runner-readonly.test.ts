import { describe, expect, it } from 'vitest';
import { probe, probePhase, probedFacts, rawProbe, valueKey } from '../../../src/engine/probe.js';
import { runPlan } from '../../../src/engine/runner.js';
import type { Finding, Plan } from '../../../src/engine/types.js';
import { ConnectionError, ExitCode } from '../../../src/errors.js';
import { fakePool } from '../../support/fake-hosts.js';

/** Read-only mode, findings from verify, and typed probes (fake hosts). */
const HOSTS = ['data1', 'data2', 'node01'];
const probes = () => ({ uptime: probe(['cat', '/proc/uptime'], (r) => Number(r.stdout.split(' ')[0])), kernel: rawProbe(['uname', '-r']) });

function doctorLike(): Plan {
  return {
    title: 'doctor',
    mutating: false,
    readOnly: true,
    phases: [
      probePhase({
        id: 'reach',
        title: 'reach every host over ssh',
        hosts: HOSTS,
        probes,
        plan: () => [],
      }),
      {
        id: 'fresh',
        title: 'the hosts were rebooted less than a year ago',
        hosts: HOSTS,
        checks: () => [['true']],
        verify: (host, _f, state): Finding[] => {
          const f = probedFacts(state, 'reach', host, probes());
          if (!f) return [];
          return f.uptime > 365 * 86400
            ? [{ severity: 'warning', host, check: 'fresh', found: `up for ${Math.floor(f.uptime / 86400)} days (${f.kernel.stdout.trim()})`, why: 'kernel fixes are not in force', fix: ['plan a reboot'] }]
            : [];
        },
      },
    ],
  };
}

describe('read-only mode', () => {
  it('runs every phase on every host although one failed, and reports the failure as a finding', async () => {
    const pool = fakePool((h, argv) => {
      if (h === 'data2') return new ConnectionError('data2', 'connection to data2 timed out');
      if (argv[0] === 'cat') return { stdout: h === 'node01' ? '40000000.5 1.0\n' : '100.0 1.0\n' };
      if (argv[0] === 'uname') return { stdout: '6.1.0-18-amd64\n' };
      return undefined;
    });
    const r = await runPlan(doctorLike(), { mode: 'apply', concurrency: 4, hosts: pool });
    expect(r.stoppedAt).toBeUndefined();
    expect(r.phases.map((p) => p.hosts.map((h) => h.status).join(','))).toEqual(['unchanged,failed,unchanged', 'unchanged,failed,unchanged']);
    expect(pool.host('data2').calls).toEqual([['cat', '/proc/uptime'], ['true']]); // tried in both phases
    expect(r.exitCode).toBe(ExitCode.partial);
    expect(r.findings).toEqual([
      { severity: 'error', host: 'data2', check: 'reach', found: 'connection to data2 timed out', why: '"reach every host over ssh" could not be checked on data2', fix: [] },
      { severity: 'error', host: 'data2', check: 'fresh', found: 'connection to data2 timed out', why: '"the hosts were rebooted less than a year ago" could not be checked on data2', fix: [] },
      { severity: 'warning', host: 'node01', check: 'fresh', found: 'up for 462 days (6.1.0-18-amd64)', why: 'kernel fixes are not in force', fix: ['plan a reboot'] },
    ]);
  });

  it('a finding of severity error fails the host (and stops a plan that is not read-only)', async () => {
    const plan: Plan = {
      title: 'p',
      mutating: true,
      phases: [
        { title: 'check', hosts: ['data1'], checks: () => [['drbdadm', 'cstate', 'r0']], verify: (host, f) => (f[0]?.stdout.trim() === 'Connected' ? [] : [{ severity: 'error', host, check: 'drbd', found: `DRBD is ${f[0]?.stdout.trim()}`, why: 'a volume change needs both servers', fix: ['drbdadm connect r0'] }]) },
        { title: 'change', hosts: ['data1'], plan: () => [{ kind: 'command', argv: ['lvcreate'] }] },
      ],
    };
    const pool = fakePool(() => ({ stdout: 'StandAlone\n' }));
    const r = await runPlan(plan, { mode: 'apply', concurrency: 1, hosts: pool });
    expect(r.stoppedAt).toBe('check');
    expect(r.phases[0]?.hosts[0]).toMatchObject({ status: 'failed', error: { message: 'data1: DRBD is StandAlone', details: ['drbdadm connect r0'] } });
    expect(pool.host('data1').calls).toEqual([['drbdadm', 'cstate', 'r0']]);
    expect(r.findings).toHaveLength(1);
  });

  it('typed probes: named facts, parsed once, in a client dry run null', async () => {
    const seen: unknown[] = [];
    const plan: Plan = { title: 't', mutating: false, phases: [probePhase({ title: 'p', hosts: ['data1'], probes, plan: (_h, f) => (seen.push(f), []) })] };
    const pool = fakePool((_h, argv) => (argv[0] === 'cat' ? { stdout: '12.5 3\n' } : { stdout: '6.1\n' }));
    await runPlan(plan, { mode: 'apply', concurrency: 1, hosts: pool });
    await runPlan(plan, { mode: 'client', concurrency: 1, hosts: pool });
    expect(seen).toEqual([{ uptime: 12.5, kernel: { exitCode: 0, stdout: '6.1\n', stderr: '', durationMs: 0 } }, null]);
  });

  it('typed undo probes: read again on the host right before the undo, which gets them by name', async () => {
    const seen: unknown[] = [];
    const plan: Plan = {
      title: 't',
      mutating: true,
      phases: [
        probePhase({
          title: 'make',
          hosts: ['data1'],
          probes: () => ({}),
          plan: () => [{ kind: 'command', argv: ['make-it'] }],
          undoProbes: () => ({ made: probe(['ls', '/made'], (r) => r.stdout.trim().split('\n')), kernel: rawProbe(['uname', '-r']) }),
          undo: (_h, _s, f) => (seen.push(f), f?.made.includes('it') ? [{ kind: 'command', argv: ['unmake-it'] }] : []),
        }),
        { title: 'fail', hosts: ['data1'], plan: () => [{ kind: 'command', argv: ['false'] }] },
      ],
    };
    const pool = fakePool((_h, argv) => (argv[0] === 'false' ? { exitCode: 1 } : argv[0] === 'ls' ? { stdout: 'it\nother\n' } : { stdout: '6.1\n' }));
    const r = await runPlan(plan, { mode: 'apply', concurrency: 1, hosts: pool });
    expect(seen).toEqual([{ made: ['it', 'other'], kernel: { exitCode: 0, stdout: '6.1\n', stderr: '', durationMs: 0 } }]);
    expect(r.undo).toMatchObject([{ phase: 'make', host: 'data1', ok: true, actions: ['unmake-it'] }]);
    expect(pool.host('data1').calls).toEqual([['make-it'], ['false'], ['ls', '/made'], ['uname', '-r'], ['unmake-it']]);
  });
});

describe('handlers', () => {
  it('run once per host after its actions, only where an action that names them changed something', async () => {
    const plan: Plan = {
      title: 'multipath',
      mutating: true,
      phases: [
        {
          title: 'configure multipathd',
          hosts: ['node01', 'node02'],
          handlers: { 'restart multipathd': () => [{ kind: 'command', argv: ['systemctl', 'restart', 'multipathd'] }] },
          plan: () => [
            { kind: 'file', file: { path: '/etc/multipath.conf', content: 'defaults {}\n' }, notify: ['restart multipathd'] },
            { kind: 'file', file: { path: '/etc/multipath/conf.d/x.conf', content: 'x\n' }, notify: ['restart multipathd'] },
          ],
        },
      ],
    };
    const pool = fakePool();
    pool.host('node02').files.set('/etc/multipath.conf', 'defaults {}\n');
    pool.host('node02').files.set('/etc/multipath/conf.d/x.conf', 'x\n');
    const r = await runPlan(plan, { mode: 'apply', concurrency: 2, hosts: pool });
    expect(pool.host('node01').calls).toEqual([['systemctl', 'restart', 'multipathd']]);
    expect(pool.host('node02').calls).toEqual([]);
    expect(r.phases[0]?.hosts.map((h) => h.status)).toEqual(['done', 'unchanged']);
    expect(r.phases[0]?.hosts[0]?.actions.at(-1)).toBe('systemctl restart multipathd');
  });
});

describe('decide, then a pure plan', () => {
  it('decide records values from the facts before plan runs; plan only reads them (client dry run too)', async () => {
    const KEY = valueKey<number>('free');
    const order: string[] = [];
    const plan: Plan = {
      title: 't',
      mutating: true,
      phases: [
        {
          title: 'read',
          hosts: ['data1'],
          checks: () => [['vgs']],
          decide: (_h, f, state) => {
            order.push('decide');
            state.values.set(KEY, f ? Number(f[0]?.stdout) : 0);
          },
          plan: (_h, _f, state) => {
            order.push('plan');
            return (state.values.get(KEY) ?? 0) > 10 ? [] : [{ kind: 'command', argv: ['grow'] }];
          },
        },
      ],
    };
    const pool = fakePool(() => ({ stdout: '42' }));
    const r = await runPlan(plan, { mode: 'apply', concurrency: 1, hosts: pool });
    expect(order).toEqual(['decide', 'plan']);
    expect(r.phases[0]?.hosts[0]?.status).toBe('unchanged');
    const client = await runPlan(plan, { mode: 'client', concurrency: 1, hosts: pool });
    expect(client.phases[0]?.hosts[0]?.actions).toEqual(['grow']);
  });
});
