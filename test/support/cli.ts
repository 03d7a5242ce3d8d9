import { statSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';

const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'enssib.js');

/** The CLI tests run the built binary; `npm test` builds it first. */
export function assertBuilt(): void {
  try {
    statSync(join(ROOT, 'dist', 'cli', 'main.js'));
  } catch {
    throw new Error('dist/ is missing: run `npm run build` (npm test does it first)');
  }
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
