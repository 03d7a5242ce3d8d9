import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { quote, quoteArg } from '../../../src/remote/quote.js';

const HOSTILE = ['plain', 'with space', "it's", '"double"', '$(id)', '`id`', 'a;reboot', 'x && y', 'line1\nline2', '', '*', '~root', '-n', '\\back\\slash', 'tab\there', 'ünïcödé ✓', "'", "''", '$HOME', '!!', '#comment', 'a|b', '>out', '{a,b}'];

describe('quote', () => {
  it('leaves safe words alone', () => {
    expect(quote(['lvcreate', '-L', '200G', '-n', 'mail', 'vg_cluster'])).toBe('lvcreate -L 200G -n mail vg_cluster');
    expect(quoteArg('/etc/scst.conf')).toBe('/etc/scst.conf');
  });

  it('single-quotes everything else', () => {
    expect(quoteArg("it's")).toBe(`'it'\\''s'`);
    expect(quoteArg('')).toBe(`''`);
    expect(quoteArg('$(id)')).toBe(`'$(id)'`);
  });

  it('refuses an empty argv', () => {
    expect(() => quote([])).toThrow();
  });

  it('a POSIX shell receives every argument byte-identical', () => {
    const line = quote(['printf', '%s\\0', ...HOSTILE]);
    for (const sh of ['/bin/sh', '/bin/bash']) {
      const out = execFileSync(sh, ['-c', line]);
      expect(out.toString('utf8').split('\0').slice(0, -1)).toEqual(HOSTILE);
    }
  });
});
