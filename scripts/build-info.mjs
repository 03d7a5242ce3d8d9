#!/usr/bin/env node
// Records the git commit dist/ was built from, for `enssib --version`.
// Run by `npm run build`; outside a git checkout it records "unknown".
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const git = (...args) => {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
};
const commit = git('rev-parse', 'HEAD');
const status = commit === null ? null : git('status', '--porcelain', '--untracked-files=no');
const info = { commit: commit ?? 'unknown', modified: status !== null && status !== '' };
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, 'dist', 'build-info.json'), `${JSON.stringify(info)}\n`);
