import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { rememberVolumes } from '../../../src/recent-volumes.js';
import { assertBuilt } from '../../support/cli.js';

// eslint-disable-next-line no-control-regex -- ANSI escapes from the terminal
const strip = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r/g, '');

const ROOT = join(import.meta.dirname, '..', '..', '..');
const home = mkdtempSync(join(tmpdir(), 'enssib-completion-home-'));
const prefix = mkdtempSync(join(tmpdir(), 'enssib-completion-prefix-'));

/**
 * Completion as the README installs it: `npm install -g .` from the checkout
 * (here into a scratch prefix), `source <(enssib completion bash|zsh)`, then
 * TAB in a real interactive shell on a pseudo-terminal (util-linux `script`).
 * Each case types a partial line, presses TAB, then Ctrl-A and "echo " so that
 * the shell prints the completed line on its own ("END" after it shows the
 * space bash adds after a unique match; zsh removes that space when the
 * cursor moves, so its lines end without it).
 */
const cases: [string, string][] = [
  ['enssib vol', 'enssib volume '],
  ['enssib volume cr', 'enssib volume create '],
  ['enssib -o j', 'enssib -o json '],
  ['enssib --output t', 'enssib --output text '],
  ['enssib --inventory inventory.y', 'enssib --inventory inventory.yaml '],
  ['enssib -i inventory.y', 'enssib -i inventory.yaml '],
  ['enssib doctor --host data2,node03,d', 'enssib doctor --host data2,node03,data1 '],
  ['enssib doctor --host node03', 'enssib doctor --host node03 '],
  ['enssib volume create mail 2G --fs x', 'enssib volume create mail 2G --fs xfs '],
  ['enssib volume create mail 2G --verify-on node02', 'enssib volume create mail 2G --verify-on node02 '],
  ['enssib service deploy ld', 'enssib service deploy ldap '],
  ['enssib volume delete ma', 'enssib volume delete mail '],
  ['enssib volume resize ld', 'enssib volume resize ldap-data '],
  ['enssib node bootstrap node01 --dry', 'enssib node bootstrap node01 --dry-run '],
  ['enssib journal --host data', 'enssib journal --host data'],
  ['enssib journal --command vol', 'enssib journal --command volume '],
  ['enssib zzz', 'enssib zzz'],
];

beforeAll(() => {
  assertBuilt();
  execFileSync('npm', ['install', '-g', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--prefix', prefix, ROOT], { stdio: 'ignore', timeout: 120_000 });
  // what `enssib volume list` leaves for completion (the same function it calls)
  rememberVolumes({ ENSSIB_CACHE_DIR: join(home, 'cache') }, join(ROOT, 'inventory.yaml'), ['mail', 'ldap-data']);
}, 180_000);

/** Runs the shell in a pseudo-terminal, sends `init`, then each case; returns what each completed line became. */
async function completeInShell(shell: string, init: string): Promise<string[]> {
  const bin = join(prefix, 'bin');
  const sub = execa('script', ['-qfec', shell, '/dev/null'], {
    cwd: ROOT,
    reject: false,
    timeout: 120_000,
    env: { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: home, ENSSIB_CACHE_DIR: join(home, 'cache'), NO_COLOR: '1', TERM: 'dumb', PS1: '$ ', INPUTRC: '/dev/null' },
  });
  let screen = '';
  sub.stdout?.on('data', (b: Buffer) => (screen += strip(b.toString())));
  const waitFor = async (re: RegExp, what: string) => {
    const until = Date.now() + 30_000;
    while (!re.test(screen)) {
      if (Date.now() > until) throw new Error(`${shell}: timed out waiting for ${what}; screen:\n${screen.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  sub.stdin?.write(`${init}; command -v enssib; echo READY-$((6*7))\n`);
  await waitFor(/^READY-42$/m, 'the shell');
  expect(screen).toContain(join(bin, 'enssib'));
  const got: string[] = [];
  for (const [i, [typed]] of cases.entries()) {
    // the line editor runs the completion before it reads the keys typed after TAB
    sub.stdin?.write(`${typed}\t\x01echo "<${i}>" \x05END\n`);
    await waitFor(new RegExp(`^<${i}> .*END$`, 'm'), `case ${i}`);
    got.push(new RegExp(`^<${i}> (.*)END$`, 'm').exec(screen)?.[1] ?? '');
  }
  sub.stdin?.write('exit\n');
  await sub;
  return got;
}

describe('completion in a real terminal, with enssib installed as documented', () => {
  it('bash: completes commands, option values (formats, files, hosts, choices, commands), services and the volumes of the last list', async () => {
    const got = await completeInShell('bash --norc --noprofile -i', 'bind "set bell-style none"; source <(enssib completion bash)');
    expect(got).toEqual(cases.map(([, want]) => want));
  }, 150_000);

  it('zsh (Debian package zsh): the same completions through compinit and compdef', async () => {
    const got = await completeInShell('zsh -f -i', 'PS1="$ "; unsetopt beep; bindkey -e; autoload -Uz compinit && compinit -u; source <(enssib completion zsh)');
    expect(got).toEqual(cases.map(([, want]) => want.trimEnd()));
  }, 150_000);
});
