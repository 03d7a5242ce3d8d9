import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

/**
 * The commit checked out in the git repository that holds `dir`, read from
 * .git itself (no git process): HEAD, then the ref it names, loose or packed.
 * Undefined outside a repository or when HEAD names a branch with no commit yet.
 */
export function gitCommit(dir: string): string | undefined {
  const gitDir = findGitDir(resolve(dir));
  if (!gitDir) return undefined;
  const head = read(join(gitDir, 'HEAD'))?.trim();
  if (!head) return undefined;
  if (/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(head)) return head;
  const m = /^ref:\s*(\S+)$/.exec(head);
  if (!m?.[1]) return undefined;
  const ref = m[1];
  // A worktree keeps its HEAD but shares refs with the main repository.
  const common = read(join(gitDir, 'commondir'))?.trim();
  const dirs = [gitDir, ...(common ? [isAbsolute(common) ? common : resolve(gitDir, common)] : [])];
  for (const d of dirs) {
    const loose = read(join(d, ref))?.trim();
    if (loose && /^[0-9a-f]{40,64}$/.test(loose)) return loose;
    const packed = read(join(d, 'packed-refs'));
    if (packed) {
      for (const line of packed.split('\n')) {
        const [sha, name] = line.trim().split(/\s+/);
        if (name === ref && sha && /^[0-9a-f]{40,64}$/.test(sha)) return sha;
      }
    }
  }
  return undefined;
}

function findGitDir(start: string): string | undefined {
  let d = start;
  for (;;) {
    const g = join(d, '.git');
    try {
      const st = statSync(g);
      if (st.isDirectory()) return g;
      if (st.isFile()) {
        const m = /^gitdir:\s*(.+)$/m.exec(read(g) ?? '');
        if (m?.[1]) return isAbsolute(m[1].trim()) ? m[1].trim() : resolve(d, m[1].trim());
      }
    } catch {
      /* not here: look in the parent */
    }
    const parent = dirname(d);
    if (parent === d) return undefined;
    d = parent;
  }
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
