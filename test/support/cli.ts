import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';

const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'enssib.js');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** The CLI tests run the built binary; `npm test` builds first. Refuse a stale build rather than test old code. */
export function assertBuilt(): void {
  let built: number;
  try {
    built = statSync(join(ROOT, 'dist', 'cli', 'main.js')).mtimeMs;
  } catch {
    throw new Error('dist/ is missing: run `npm run build` (npm test does it first)');
  }
  if (newest(join(ROOT, 'src')) > built + 1000) throw new Error('dist/ is older than src/: run `npm run build` (npm test does it first)');
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `enssib ARGS` as a user would, without a terminal. */
export async function enssib(args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  assertBuilt();
  const r = await execa('node', [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { NO_COLOR: '1', CI: '1', ...opts.env },
    reject: false,
    timeout: opts.timeoutMs ?? 120_000,
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
