import { describe, expect, it } from 'vitest';
import { runPlan } from '../../../src/engine/runner.js';
import type { Plan } from '../../../src/engine/types.js';
import { reportJson } from '../../../src/ui/report.js';
import { enssib } from '../../support/cli.js';
import { fakePool } from '../../support/fake-hosts.js';

/**
 * The same client dry run twice prints the same bytes (built CLI, bundled
 * inventory, no terminal): what a real run draws at random or reads from the
 * clock (the volume identity, the lock token, pid and time) shows as a
 * placeholder, so two plans can be compared with `diff`.
 */
const COMMANDS: string[][] = [
  ['volume', 'create', 'mail', '200G', '-n'],
  ['volume', 'create', 'mail', '1.5T', '--fs', 'xfs', '--pv', '-n', '-o', 'json'],
  ['volume', 'resize', 'mail', '300G', '--grow-fs', '-n'],
  ['volume', 'delete', 'mail', '-n'],
  ['service', 'deploy', 'mail', '-n'],
  ['service', 'deploy', 'www', '-n', '-o', 'json'],
];

describe('client dry runs are repeatable', () => {
  it.each(COMMANDS.map((c) => [c.join(' '), c] as const))('enssib %s prints the same output twice', async (_, args) => {
    const first = await enssib(args);
    const second = await enssib(args);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.length).toBeGreaterThan(200);
    expect(second.stdout).toBe(first.stdout);
    expect(second.stderr).toBe(first.stderr);
  });

  it('shows placeholders for the identity and the lock owner, never a random value', async () => {
    const r = await enssib(['volume', 'create', 'mail', '200G', '-n']);
    expect(r.stdout).toContain("--addtag 'enssib_id_<new identity>'");
    expect(r.stdout).toContain('t10_dev_id "<new identity>"');
    expect(r.stdout).toContain('token=<token> ');
    expect(r.stdout).toContain(' pid=<pid> since=<time> ');
    expect(r.stdout).not.toMatch(/[0-9a-f]{16}/);
  });
});

describe('a client dry run\'s JSON report', () => {
  it('carries no start time and no durations (phases, hosts, per-item work); a real run carries them', async () => {
    const plan: Plan = {
      title: 'per-item',
      mutating: true,
      phases: [{ title: 'lock', hosts: ['data1'], plan: () => [{ kind: 'command', argv: ['lock'] }] }],
      items: { title: 'each volume', items: ['a', 'b'].map((v) => ({ name: v, phases: [{ title: 'copy', hosts: ['data1'], plan: () => [{ kind: 'command' as const, argv: ['copy', v] }] }] })) },
    };
    const client = JSON.stringify(reportJson(await runPlan(plan, { mode: 'client', concurrency: 2, hosts: fakePool() })));
    expect(client).toContain('"items":[{"item":"a","status":"planned"}');
    expect(client).not.toMatch(/startedAt|durationMs/);
    const real = JSON.stringify(reportJson(await runPlan(plan, { mode: 'apply', concurrency: 2, hosts: fakePool() })));
    expect(real).toMatch(/"startedAt":.*"durationMs":/);
  });
});
