import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InterruptedError, OperationError, TimeoutError } from '../errors.js';
import { ExecHost } from './exec-host.js';
import type { HostPool } from './pool.js';
import { quote } from './quote.js';
import type { FileSpec, RunOptions, RunResult, StreamOptions, StreamResult, UploadOutcome } from './types.js';

/**
 * The machine enssib runs on, as a Host: commands run here (no shell, as the
 * user enssib runs as: `sudo` is not added), files are written here. For what
 * enssib installs on its own machine, such as the backup timer.
 */
export class LocalHost extends ExecHost {
  constructor(
    readonly name: string,
    private readonly commandTimeoutMs = 60_000,
  ) {
    super();
  }

  async exec(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const r = await this.spawn(argv, opts);
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, durationMs: r.durationMs };
  }

  async stream(argv: readonly string[], opts: StreamOptions): Promise<StreamResult> {
    const r = await this.spawn(argv, opts, opts);
    return { exitCode: r.exitCode, stderr: r.stderr, bytes: r.bytes, durationMs: r.durationMs };
  }

  /** Written beside the target then renamed (atomic), only when content or mode differ; the owner is the user enssib runs as. */
  async upload(file: FileSpec): Promise<UploadOutcome> {
    const content = typeof file.content === 'string' ? Buffer.from(file.content) : file.content;
    const mode = parseInt(file.mode ?? '0644', 8);
    try {
      if (readFileSync(file.path).equals(content) && (statSync(file.path).mode & 0o7777) === mode) return 'unchanged';
    } catch {
      // absent or unreadable: written below (an unreadable one fails there, with its reason)
    }
    const tmp = join(dirname(file.path), `.${basename(file.path)}.enssib-${process.pid}`);
    try {
      writeFileSync(tmp, content, { mode, flag: 'wx' });
      chmodSync(tmp, mode);
      renameSync(tmp, file.path);
    } catch (e) {
      try {
        unlinkSync(tmp);
      } catch {
        // nothing was created
      }
      throw new OperationError(`${this.name}: cannot write ${file.path}: ${(e as Error).message}`);
    }
    return 'written';
  }

  private spawn(argv: readonly string[], opts: RunOptions, streams: Pick<StreamOptions, 'stdout' | 'onProgress'> = {}): Promise<RunResult & { bytes: number }> {
    const [cmd, ...args] = argv;
    if (!cmd) return Promise.reject(new OperationError(`${this.name}: an empty command`));
    const started = Date.now();
    const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs;
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let bytes = 0;
      let why: 'timeout' | 'cancel' | null = null;
      const stop = (reason: 'timeout' | 'cancel') => {
        why = reason;
        child.kill('SIGTERM');
      };
      const timer = setTimeout(() => stop('timeout'), timeoutMs);
      const onAbort = () => stop('cancel');
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
      child.stdout.on('data', (b: Buffer) => {
        bytes += b.length;
        if (streams.stdout) streams.stdout.write(b);
        else out.push(b);
        streams.onProgress?.(bytes);
      });
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input ?? '');
      const done = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      child.on('error', (e: NodeJS.ErrnoException) => {
        done();
        reject(new OperationError(`${this.name}: cannot run ${cmd}: ${e.code === 'ENOENT' ? 'not found' : e.message}`));
      });
      child.on('close', (code, signal) => {
        done();
        const line = quote(argv);
        if (why === 'cancel') return reject(new InterruptedError(`${this.name}: cancelled: ${line}`));
        if (why === 'timeout') return reject(new TimeoutError(this.name, line, timeoutMs, { stoppedOnHost: true }));
        streams.stdout?.end();
        resolve({ exitCode: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), durationMs: Date.now() - started, bytes });
      });
    });
  }
}

/** A pool whose one host is this machine, under the name the plan gives it. */
export function localPool(host: LocalHost): HostPool {
  return {
    get: (name) => {
      if (name !== host.name) throw new OperationError(`internal: ${name} is not this machine (${host.name})`);
      return host;
    },
    closeAll: async () => {},
  };
}
