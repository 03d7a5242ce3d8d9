import { copyFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../../src/cli/commands.js';
import { assertBuilt, BIN } from '../../support/cli.js';

// eslint-disable-next-line no-control-regex -- ANSI escapes from the terminal
const strip = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

/** `enssib` alone in a terminal: a real pseudo-terminal from util-linux `script`. */
describe('interactive menu', () => {
  it('picks a command, asks about a dry run, and runs the same code path as typing it', async () => {
    assertBuilt();
    const sub = execa('script', ['-qfec', `node ${BIN}`, '/dev/null'], { reject: false, timeout: 60_000, env: { NO_COLOR: '1' } });
    let screen = '';
    const answered = new Set<string>();
    const answer = (when: string, keys: string) => {
      if (screen.includes(when) && !answered.has(when)) {
        answered.add(when);
        sub.stdin?.write(keys);
      }
    };
    sub.stdout?.on('data', (b: Buffer) => {
      screen += strip(b.toString());
      answer('What do you want to do?', '\r'); // first entry: inventory check
      answer('Dry run first', 'n\r');
      if (screen.includes('yaml: valid')) sub.stdin?.end();
    });
    const r = await sub;
    expect(screen).toContain('running: enssib inventory check');
    expect(screen).toMatch(/inventory\.yaml: valid/);
    expect(r.exitCode).toBe(0);
  });
});

/** Drives `enssib` in a pseudo-terminal: `steps` are [text to wait for, keys to send], in order. */
async function drive(steps: [string | RegExp, string][], env: Record<string, string> = {}, cwd?: string) {
  assertBuilt();
  const sub = execa('script', ['-qfec', `node ${BIN}`, '/dev/null'], { reject: false, timeout: 90_000, env: { NO_COLOR: '1', ...env }, ...(cwd ? { cwd } : {}) });
  let screen = '';
  let next = 0;
  let seenUpTo = 0;
  sub.stdout?.on('data', (b: Buffer) => {
    screen += strip(b.toString());
    while (next < steps.length) {
      const [when, keys] = steps[next] as [string | RegExp, string];
      const rest = screen.slice(seenUpTo);
      const at = typeof when === 'string' ? rest.indexOf(when) : rest.search(when);
      if (at < 0) break;
      seenUpTo += at + 1;
      next++;
      sub.stdin?.write(keys);
    }
  });
  const r = await sub;
  return { screen, code: r.exitCode, answered: next };
}

const DOWN = '\x1b[B';
const BACKSPACE = '\x7f';

describe('interactive menu: answers checked as typed, options, apply after a dry run, Ctrl-C', () => {
  it('Ctrl-C at the first question exits 130 (interrupted), not 0', async () => {
    const r = await drive([['What do you want to do?', '\x03']]);
    expect(r.code).toBe(130);
  });

  it('quit exits 0', async () => {
    const quit = COMMANDS.length; // the entry after the commands
    const r = await drive([['What do you want to do?', `${DOWN.repeat(quit)}\r`]]);
    expect(r.code).toBe(0);
  });

  it('volume create: a bad name and a size without unit are refused at the prompt; --fs is offered; a dry run, then "apply now?" answered no', async () => {
    const index = COMMANDS.findIndex((c) => c.path.join(' ') === 'volume create');
    const r = await drive(
      [
        ['What do you want to do?', `${DOWN.repeat(index)}\r`],
        ['<name>', 'Mail\r'],
        ['is not valid', `${BACKSPACE.repeat(4)}mail\r`],
        ['<size>', '200\r'],
        ['has no unit', `${BACKSPACE.repeat(3)}2GB\r`],
        ['is ambiguous', `${BACKSPACE.repeat(3)}2G\r`],
        ['Options', ' \r'],
        ['--fs — filesystem to create', `${DOWN}\r`],
        ['Dry run first', 'y\r'],
        [/Apply now: enssib volume create mail 2G --fs xfs\?/, 'n\r'],
      ],
      { ENSSIB_SSH_CONFIG: '/nonexistent/ssh_config' },
    );
    expect(r.answered, r.screen.slice(-1500)).toBe(10);
    expect(r.screen).toContain('running: enssib volume create mail 2G --fs xfs --dry-run');
    expect(r.screen).toContain('Dry run of "volume create mail 2G"');
    expect(r.screen).toMatch(/mkfs\.xfs/);
    expect(r.code).toBe(0);
  });

  it('service new: a dry run, then "apply now?" answered yes runs the same command for real', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-menu-'));
    copyFileSync(join(import.meta.dirname, '..', '..', '..', 'inventory.yaml'), join(dir, 'inventory.yaml'));
    const index = COMMANDS.findIndex((c) => c.path.join(' ') === 'service new');
    const r = await drive(
      [
        ['What do you want to do?', `${DOWN.repeat(index)}\r`],
        ['<name>', 'wiki\r'],
        ['Dry run first', 'y\r'],
        ['Apply now: enssib service new wiki?', 'y\r'],
      ],
      {},
      dir,
    );
    expect(r.screen).toContain('would create services/wiki/');
    expect(r.screen).toMatch(/running: enssib service new wiki\r?\n/);
    expect(r.screen).toContain('created services/wiki/');
    expect(existsSync(join(dir, 'services', 'wiki', 'Dockerfile'))).toBe(true);
    expect(r.code).toBe(0);
  });

  it('a host answer is checked against the inventory', async () => {
    const index = COMMANDS.findIndex((c) => c.path.join(' ') === 'node check');
    const r = await drive([
      ['What do you want to do?', `${DOWN.repeat(index)}\r`],
      ['<host>', 'node09\r'],
      ['no worker "node09" in the inventory', `${BACKSPACE.repeat(6)}\x03`],
    ]);
    expect(r.answered).toBe(3);
    expect(r.screen).toContain('Known: node01, node02, node03');
    expect(r.code).toBe(130);
  });
});
