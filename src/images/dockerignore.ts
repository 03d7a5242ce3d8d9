import type Ignore from 'ignore';
import { requireCjs } from '../require.js';

/**
 * .dockerignore rules, matched with the `ignore` package.
 *
 * Docker's rules differ from .gitignore's: every pattern is relative to the
 * context root (`foo` excludes ./foo only, not a/foo), is cleaned like a path
 * (`./a/../b/` → `b`, a leading `/` is dropped), `**` spans folders, `!`
 * re-includes, and the last matching line wins. Each line is turned into an
 * anchored gitignore pattern (`/b`), which `ignore` then matches with the same
 * meaning. One difference remains: a file inside an excluded folder cannot be
 * re-included by a later `!` line (git's rule); Docker would send it. enssib
 * never sends it either, so what is hashed is exactly what is built.
 */
export interface IgnoreRules {
  /** The patterns as enssib understood them (gitignore syntax), for --verbose. */
  readonly patterns: string[];
  /** Whether a context-relative POSIX path (file or folder) is left out. */
  excludes(path: string): boolean;
}

export function parseDockerignore(text: string): IgnoreRules {
  const patterns: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let negate = false;
    if (line.startsWith('!')) {
      negate = true;
      line = line.slice(1).trim();
    }
    const cleaned = cleanPattern(line);
    if (cleaned === null) continue;
    patterns.push(`${negate ? '!' : ''}/${cleaned}`);
  }
  // No rules (most service folders have no .dockerignore): the matcher is not even loaded.
  if (patterns.length === 0) return { patterns, excludes: () => false };
  const ig = (requireCjs('ignore') as typeof Ignore)({ ignorecase: false, allowRelativePaths: false }).add(patterns);
  return {
    patterns,
    excludes(path: string): boolean {
      if (path === '' || path === '.') return false;
      return ig.ignores(path);
    },
  };
}

/** Go's filepath.Clean for a pattern, minus the leading '/'; null for patterns that name nothing inside the context. */
function cleanPattern(p: string): string | null {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) return null;
      out.pop();
      continue;
    }
    out.push(part);
  }
  if (out.length === 0) return null;
  return out.join('/');
}
