import { describe, expect, it } from 'vitest';
import { enssib } from '../../support/cli.js';

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
