import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../../src/cli/commands.js';
import { topLevelHelp } from '../../../src/cli/help-text.js';
import { expandDryRun, invokedCommand } from '../../../src/cli/main.js';
import { EXIT_CODES } from '../../../src/cli/exit-codes.js';
import { renderReadme, TOPICS } from '../../../src/cli/reference.js';
import { enssib } from '../../support/cli.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

describe('enssib CLI', () => {
  it('--help lists every command group and the exit codes', async () => {
    const r = await enssib(['--help']);
    expect(r.code).toBe(0);
    for (const g of ['node', 'image', 'service', 'volume', 'backup', 'inventory', 'doctor', 'completion']) expect(r.stdout).toMatch(new RegExp(`^  ${g}\\b`, 'm'));
    expect(r.stdout).toContain('Exit codes: 0 ok, 1 failed, 2 usage');
  });

  it('--help and -h print the help the build cached (dist/cli/help.json), identical to the CLI\'s own', async () => {
    const own = topLevelHelp(80);
    for (const flag of ['--help', '-h']) {
      const r = await enssib([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(own.replace(/\n$/, '')); // execa drops the final newline
    }
  });

  it('every command has help with examples', async () => {
    for (const spec of COMMANDS) {
      expect(spec.examples.length, spec.path.join(' ')).toBeGreaterThan(0);
      const r = await enssib([...spec.path, '--help']);
      expect(r.code, spec.path.join(' ')).toBe(0);
      expect(r.stdout).toContain('Examples:');
      expect(r.stdout).toContain(spec.examples[0]);
    }
  });

  it('an unknown command is a usage error with a suggestion', async () => {
    const r = await enssib(['volum', 'list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'volum'");
    expect(r.stderr).toContain('Did you mean volume?');
  });

  it('an unknown flag is a usage error with a suggestion', async () => {
    const r = await enssib(['inventory', 'check', '--dry-runn']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--dry-runn'[\s\S]*Did you mean --dry-run\?/);
  });

  it('a missing argument is a usage error naming it', async () => {
    const r = await enssib(['volume', 'create', 'mail']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("missing required argument 'size'");
  });

  it('no arguments without a terminal is a usage error, not a menu', async () => {
    const r = await enssib([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: enssib');
  });

  it('a bad --concurrency and a bad --output are usage errors', async () => {
    expect((await enssib(['-c', '0', 'inventory', 'check'])).code).toBe(2);
    expect((await enssib(['-o', 'yaml', 'inventory', 'check'])).code).toBe(2);
    expect((await enssib(['--dry-run=maybe', 'inventory', 'check'])).code).toBe(2);
  });

  it.each([
    ['volume', 'create', 'mail;reboot', '200G'],
    ['volume', 'create', '../x', '200G'],
    ['volume', 'create', '$(id)', '200G'],
    ['volume', 'create', 'MAIL', '200G'],
    ['volume', 'create', 'a'.repeat(64), '200G'],
    ['volume', 'create', '', '200G'],
    ['volume', 'create', 'mél', '200G'],
    ['volume', 'create', 'mail', '200G;reboot'],
    ['volume', 'create', 'mail', '0'],
    ['volume', 'create', 'mail', '-5G'],
    ['volume', 'delete', 'x y'],
    ['backup', 'snapshot', 'ok', 'bad;name'],
    ['node', 'bootstrap', 'node04;id'],
  ])('hostile input is refused before anything runs: %j', async (...args) => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-cli-'));
    const r = await enssib(['--inventory', join(dir, 'none.yaml'), ...args], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: (volume name|host name|size|unknown option '-5G')/m);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
  });

  it('a broken inventory is a configuration error with file:line:column and no stack trace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-cli-'));
    writeFileSync(join(dir, 'inventory.yaml'), VALID_INVENTORY.replace('mtu: 9000', 'mtu: "x"'));
    const r = await enssib(['inventory', 'check'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^error: ${dir}/inventory\\.yaml:7:\\d+: networks\\.cluster\\.mtu: expected a number, found string "x"$`, 'm'));
    expect(r.stderr).not.toMatch(/\bat .*:\d+:\d+\)/);
  });

  it('finds the inventory through ENSSIB_INVENTORY', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-cli-'));
    writeFileSync(join(dir, 'site.yaml'), VALID_INVENTORY);
    const r = await enssib(['inventory', 'show', '-o', 'json'], { cwd: tmpdir(), env: { ENSSIB_INVENTORY: join(dir, 'site.yaml') } });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { hosts: { name: string; podSubnet: string | null }[] };
    expect(doc.hosts.map((h) => h.name)).toEqual(['data1', 'data2', 'node01', 'node02']);
    expect(doc.hosts[2]?.podSubnet).toBe('10.100.1.0/24');
  });

  it('inventory check and node list on the bundled inventory', async () => {
    const check = await enssib(['inventory', 'check']);
    expect(check.code).toBe(0);
    expect(check.stdout).toContain('inventory.yaml: valid');
    // no kubeconfig: the inventory's view only, said on stderr (the bundled inventory's API server is never contacted)
    const nodes = await enssib(['node', 'list', '-o', 'json'], { env: { KUBECONFIG: '/nonexistent/kubeconfig' } });
    expect(nodes.code).toBe(0);
    const doc = JSON.parse(nodes.stdout) as { live: boolean; nodes: { name: string; node: unknown }[] };
    expect(doc.live).toBe(false);
    expect(doc.nodes.map((n) => [n.name, n.node])).toEqual([['node01', null], ['node02', null], ['node03', null]]);
    expect(nodes.stderr).toMatch(/^Inventory only: no kubeconfig at \/nonexistent\/kubeconfig \(from KUBECONFIG\)\./);
  });

  it('a doctor dry run over the bundled inventory prints the exact commands and contacts nothing', async () => {
    const r = await enssib(['doctor', '--dry-run'], { env: { ENSSIB_SSH_CONFIG: '/nonexistent/ssh_config' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('nothing was contacted');
    expect(r.stdout).toMatch(/node03\n\s+check: timeout --verbose -k 2 10 sh -c 'uname -r;/);
  });

  it('--dry-run=server is taken apart so a bare --dry-run never swallows the next word', () => {
    expect(expandDryRun(['--dry-run=server', 'volume'])).toEqual(['--dry-run', '--dry-run-mode', 'server', 'volume']);
    expect(expandDryRun(['--dry-run', 'volume'])).toEqual(['--dry-run', 'volume']);
  });

  it('builds only the command an argument list plainly names; anything else gets the whole tree', () => {
    const path = (argv: string[]) => invokedCommand(argv)?.map((s) => s.path.join(' '));
    expect(path(['image', 'push', 'blob'])).toEqual(['image push']);
    expect(path(['-i', 'image', '-o', 'json', '--inventory=x.yaml', '-n', '--dry-run-mode', 'server', 'image', 'push', '--all'])).toEqual(['image push']);
    expect(path(['--output=json', 'journal', '--since', '1d'])).toEqual(['journal']);
    expect(path(['volume', 'create', '--help'])).toEqual(['volume create']);
    for (const argv of [[], ['--help'], ['-V'], ['image'], ['image', '--help'], ['imgae', 'push'], ['help', 'image', 'push'], ['completion', 'bash'], ['__complete', 'image'], ['-x', 'image', 'push'], ['-ny', 'image', 'push'], ['--', 'image', 'push']]) {
      expect(path(argv), argv.join(' ')).toBeUndefined();
    }
  });

  it('a command parsed alone reads its options, the global ones and their errors as in the whole tree', async () => {
    const r = await enssib(['-o', 'yaml', 'image', 'push', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("option '-o, --output <format>' argument 'yaml' is invalid");
    const t = await enssib(['image', 'push', '--al']);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/unknown option '--al'[\s\S]*Did you mean --all\?/);
  });

  it('completes commands, subcommands, flags and host names', async () => {
    const top = await enssib(['__complete', '--', 'vo']);
    expect(top.stdout.trim()).toBe('volume');
    const sub = await enssib(['__complete', '--', 'volume', '']);
    expect(sub.stdout.trim().split('\n')).toEqual(['create', 'delete', 'list', 'resize']);
    const hosts = await enssib(['__complete', '--', 'node', 'bootstrap', 'node0']);
    expect(hosts.stdout.trim().split('\n')).toEqual(['node01', 'node02', 'node03']);
    const flags = await enssib(['__complete', '--', 'volume', 'create', '--ke']);
    expect(flags.stdout.trim()).toBe('--keep-on-failure');
    const journal = await enssib(['__complete', '--', 'journal', '--']);
    expect(journal.stdout.trim().split('\n')).toEqual(expect.arrayContaining(['--command', '--host', '--since']));
    const journalHost = await enssib(['__complete', '--', 'journal', '--host', 'da']);
    expect(journalHost.stdout.trim().split('\n')).toEqual(['data1', 'data2']);
    const journalCommand = await enssib(['__complete', '--', 'journal', '--command', '']);
    expect(journalCommand.stdout.trim().split('\n')).toEqual(expect.arrayContaining(['image', 'service', 'volume']));
    const bash = await enssib(['completion', 'bash']);
    expect(bash.stdout).toContain('complete -F _enssib_complete enssib');
    expect((await enssib(['completion', 'fish'])).code).toBe(2);
  });
});

describe('one source for the reference text', () => {
  it("the README's command, exit-code and inventory tables are the ones rendered from the command table (node scripts/readme.mjs)", () => {
    const readme = readFileSync(join(import.meta.dirname, '..', '..', '..', 'README.md'), 'utf8');
    expect(renderReadme(readme)).toBe(readme);
    for (const spec of COMMANDS) expect(readme).toContain(`| \`enssib ${spec.path.join(' ')}`);
  });

  it('every command of the table is in --help, and every topic has its help', async () => {
    const help = (await enssib(['--help'])).stdout;
    for (const g of new Set(COMMANDS.map((c) => c.path[0] as string))) expect(help).toMatch(new RegExp(`^  ${g}\\b`, 'm'));
    for (const t of TOPICS) {
      const r = await enssib(['help', t.name]);
      expect(r.code, t.name).toBe(0);
      expect(r.stdout.startsWith(t.title)).toBe(true);
    }
    const codes = (await enssib(['help', 'exit-codes'])).stdout;
    for (const e of EXIT_CODES) expect(codes).toMatch(new RegExp(`^\\s+${e.code}  `, 'm'));
    expect(help).toContain(`${EXIT_CODES.map((e) => `${e.code} ${e.short}`).join(', ')}.`.slice(0, 30));
  });
});
