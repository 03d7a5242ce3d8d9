import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gitCommit } from '../../../src/images/git.js';

const git = (dir: string, ...args: string[]) => execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { encoding: 'utf8' }).trim();

describe('gitCommit (read from .git, no git process)', () => {
  it('outside a repository: none', () => {
    expect(gitCommit(mkdtempSync(join(tmpdir(), 'enssib-nogit-')))).toBeUndefined();
  });

  it('the checked-out commit, from a subfolder, loose and packed refs, detached HEAD', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-git-'));
    git(dir, 'init', '-q');
    expect(gitCommit(dir)).toBeUndefined(); // no commit yet
    mkdirSync(join(dir, 'services', 'ldap'), { recursive: true });
    writeFileSync(join(dir, 'services', 'ldap', 'Dockerfile'), 'FROM scratch\n');
    git(dir, 'add', '.');
    git(dir, 'commit', '-q', '-m', 'one');
    const head = git(dir, 'rev-parse', 'HEAD');
    expect(gitCommit(join(dir, 'services', 'ldap'))).toBe(head);
    git(dir, 'pack-refs', '--all');
    expect(gitCommit(join(dir, 'services', 'ldap'))).toBe(head);
    git(dir, 'checkout', '-q', '--detach');
    expect(gitCommit(dir)).toBe(head);
  });

  it('a worktree (.git file pointing at the main repository)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-git-'));
    git(dir, 'init', '-q');
    writeFileSync(join(dir, 'a'), 'a');
    git(dir, 'add', '.');
    git(dir, 'commit', '-q', '-m', 'one');
    const wt = join(mkdtempSync(join(tmpdir(), 'enssib-wt-')), 'wt');
    git(dir, 'worktree', 'add', '-q', '-b', 'side', wt);
    expect(gitCommit(wt)).toBe(git(dir, 'rev-parse', 'HEAD'));
  });
});
