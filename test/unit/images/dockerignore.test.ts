import { describe, expect, it } from 'vitest';
import { parseDockerignore } from '../../../src/images/dockerignore.js';

describe('.dockerignore (Docker semantics through the ignore package)', () => {
  const ex = (rules: string, path: string) => parseDockerignore(rules).excludes(path);

  it('a plain pattern is anchored at the context root, unlike .gitignore', () => {
    expect(ex('secret.txt', 'secret.txt')).toBe(true);
    expect(ex('secret.txt', 'sub/secret.txt')).toBe(false);
    expect(ex('*.md', 'README.md')).toBe(true);
    expect(ex('*.md', 'docs/README.md')).toBe(false);
  });

  it('** spans folders', () => {
    expect(ex('**/*.log', 'a.log')).toBe(true);
    expect(ex('**/*.log', 'x/y/z.log')).toBe(true);
    expect(ex('x/**/tmp', 'x/a/b/tmp')).toBe(true);
    expect(ex('x/**/tmp', 'y/a/tmp')).toBe(false);
  });

  it('a folder pattern excludes everything inside it', () => {
    expect(ex('node_modules', 'node_modules/a/b.js')).toBe(true);
    expect(ex('node_modules/', 'node_modules/a/b.js')).toBe(true);
    expect(ex('build', 'src/build/x')).toBe(false);
  });

  it('patterns are cleaned like paths: leading /, ./, .., trailing /', () => {
    expect(ex('/secret', 'secret')).toBe(true);
    expect(ex('./a/../secret/', 'secret/x')).toBe(true);
    expect(ex('../outside', 'outside')).toBe(false);
  });

  it('! re-includes, the last matching line wins', () => {
    const rules = '*.txt\n!keep.txt\n';
    expect(ex(rules, 'drop.txt')).toBe(true);
    expect(ex(rules, 'keep.txt')).toBe(false);
    expect(ex('!keep.txt\n*.txt\n', 'keep.txt')).toBe(true);
    const allBut = '*\n!Dockerfile\n!app\n';
    expect(ex(allBut, 'README.md')).toBe(true);
    expect(ex(allBut, 'app/main.py')).toBe(false);
    expect(ex(allBut, 'Dockerfile')).toBe(false);
  });

  it('comments, blank lines and surrounding spaces are ignored; matching is case-sensitive', () => {
    const rules = '# a comment\n\n   tmp   \r\n';
    expect(parseDockerignore(rules).patterns).toEqual(['/tmp']);
    expect(ex(rules, 'tmp')).toBe(true);
    expect(ex(rules, 'TMP')).toBe(false);
  });

  it('an empty file excludes nothing; the root itself is never excluded', () => {
    expect(ex('', 'anything')).toBe(false);
    expect(ex('*', '')).toBe(false);
    expect(ex('*', '.')).toBe(false);
  });
});
