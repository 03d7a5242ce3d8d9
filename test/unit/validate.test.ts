import { describe, expect, it } from 'vitest';
import { ExitCode, UsageError } from '../../src/errors.js';
import { formatBytes, parseSize, validateName } from '../../src/validate.js';

describe('validateName', () => {
  it.each(['mail', 'ldap', 'www-2', 'a', 'a'.repeat(63)])('accepts %j', (n) => {
    expect(validateName('volume', n)).toBe(n);
  });
  it.each([
    ['mail;reboot', /not valid/],
    ['../x', /not valid/],
    ['$(id)', /not valid/],
    ['`id`', /not valid/],
    ['Mail', /not valid/],
    ['mail ', /not valid/],
    ['-mail', /not valid/],
    ['mail-', /not valid/],
    ['1mail', /not valid/],
    ['mail/x', /not valid/],
    ['maïl', /not valid/],
    ['邮件', /not valid/],
    ['a'.repeat(64), /64 characters long; at most 63/],
    ['a'.repeat(100_000), /100000 characters long/],
    ['', /empty/],
    ['mail\nreboot', /not valid/],
  ])('refuses %j', (n, msg) => {
    let err: unknown;
    try {
      validateName('volume', n);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(ExitCode.usage);
    expect((err as UsageError).message).toMatch(msg);
    expect((err as UsageError).message.length).toBeLessThan(200);
  });
  it('honours a shorter limit', () => {
    expect(() => validateName('volume', 'a'.repeat(40), 32)).toThrow(/at most 32/);
  });
});

describe('parseSize', () => {
  it.each([
    ['200G', 200 * 1024 ** 3],
    ['1.5T', 1.5 * 1024 ** 4],
    ['512M', 512 * 1024 ** 2],
    ['512m', 512 * 1024 ** 2],
    ['10GiB', 10 * 1024 ** 3],
    ['1024K', 1024 * 1024],
  ])('%s', (s, bytes) => {
    expect(parseSize(s)).toBe(bytes);
  });
  it.each(['0', '0G', '-5G', 'abc', '', ' ', '12X', '1e9G', 'G', '1..5G', '200G;reboot', '$(id)G', '9999999999999999999999T', '100K', '１G'])('refuses %j', (s) => {
    expect(() => parseSize(s)).toThrow(UsageError);
  });
  it('formats back', () => {
    expect(formatBytes(200 * 1024 ** 3)).toBe('200G');
    expect(formatBytes(1.5 * 1024 ** 4)).toBe('1.5T');
    expect(formatBytes(4 * 1024 ** 2)).toBe('4M');
  });
});
