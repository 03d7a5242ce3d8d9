import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
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
