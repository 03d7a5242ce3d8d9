import { describe, expect, it } from 'vitest';
import { colors } from '../../../src/ui/output.js';

const E = '\x1b[';

describe('colors: the ANSI codes of the output layer', () => {
  it('wraps text in the style and its own close code', () => {
    const c = colors(true);
    expect(c.bold('x')).toBe(`${E}1mx${E}22m`);
    expect(c.dim('x')).toBe(`${E}2mx${E}22m`);
    expect(c.red('x')).toBe(`${E}31mx${E}39m`);
    expect(c.yellow('x')).toBe(`${E}33mx${E}39m`);
    expect(c.green('x')).toBe(`${E}32mx${E}39m`);
    expect(c.cyan('x')).toBe(`${E}36mx${E}39m`);
    expect(c.red('')).toBe('');
  });

  it('re-opens an outer style of the same kind after an inner one closes, and closes and re-opens it around each line break', () => {
    const c = colors(true);
    expect(c.red(`a ${c.green('b')} c`)).toBe(`${E}31ma ${E}32mb${E}39m${E}31m c${E}39m`);
    expect(c.bold(`a\nb\r\nc`)).toBe(`${E}1ma${E}22m\n${E}1mb${E}22m\r\n${E}1mc${E}22m`);
  });

  it('writes no code when colour is off', () => {
    const c = colors(false);
    expect(c.bold(`a ${c.red('b')}\nc`)).toBe('a b\nc');
  });
});
