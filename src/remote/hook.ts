import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { OperationError } from '../errors.js';

/**
 * Runs a site admin's zx script (a service's hook, `services/<name>/hooks/*.mjs`)
 * on this machine: `node <zx's cli> <script>`, as `zx <script>` would, in its
 * own process group (a Ctrl-C in the terminal reaches enssib only), with the
 * context in its environment. zx is resolved only here, when a hook exists,
 * and loaded by the child: enssib itself never imports it.
 */

export interface HookRequest {
  script: string;
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  /** Aborted when the run's commands in flight are cancelled (a second Ctrl-C): the hook is stopped like at its deadline. */
  signal?: AbortSignal;
}

export interface HookResult {
  exitCode: number;
  timedOut: boolean;
  /** Stopped because `signal` was aborted. */
  cancelled: boolean;
  /** What it printed (stdout and stderr, in order), by line. */
  output: string[];
}

export type HookRun = (req: HookRequest) => Promise<HookResult>;

/** At most this much of a hook's output is kept (the end of it). */
const KEEP_BYTES = 64 * 1024;

export const runHook: HookRun = (req) => {
  const zx = fileURLToPath(import.meta.resolve('zx/cli'));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [zx, req.script], { cwd: req.cwd, env: { ...process.env, ...req.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    const keep = (b: Buffer) => {
      out = (out + b.toString('utf8')).slice(-KEEP_BYTES);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    let cancelled = false;
    const kill = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    /** SIGTERM to the hook's whole process group (what it started too), SIGKILL 5 s later if it is still there. */
    const stop = () => {
      kill('SIGTERM');
      setTimeout(() => kill('SIGKILL'), 5000).unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, req.timeoutMs);
    const onAbort = () => {
      cancelled = true;
      stop();
    };
    if (req.signal?.aborted) onAbort();
    else req.signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (e) => {
      done();
      reject(new OperationError(`cannot run the hook ${req.script}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      done();
      resolve({ exitCode: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), timedOut, cancelled, output: out.split('\n').map((l) => l.trimEnd()).filter(Boolean) });
    });
  });
};
