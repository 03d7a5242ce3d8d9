import { InterruptedError } from '../../src/errors.js';
import { ExecHost } from '../../src/remote/exec-host.js';
import type { HostPool } from '../../src/remote/pool.js';
import { quote } from '../../src/remote/quote.js';
import type { FileSpec, RunOptions, RunResult, StreamOptions, StreamResult, UploadOutcome } from '../../src/remote/types.js';

/**
 * A stand-in for hosts in unit tests: records every command and answers from a
 * script. Integration tests use real OpenSSH servers instead (the hosts lab).
 */
export type Answer = Partial<RunResult> | Error | undefined;
/** A promise stands for a command in flight: it can be cancelled through RunOptions.signal. */
export type Responder = (host: string, argv: readonly string[]) => Answer | Promise<Answer>;

export class FakeHost extends ExecHost {
  readonly calls: string[][] = [];
  /** What each call got on its stdin (RunOptions.input), by the call's index. */
  readonly inputs: (string | undefined)[] = [];
  /** The time limit each call got (RunOptions.timeoutMs; undefined: the session's), by the call's index. */
  readonly timeouts: (number | undefined)[] = [];
  readonly files = new Map<string, string>();
  constructor(
    readonly name: string,
    private readonly respond: Responder,
  ) {
    super();
  }
  async exec(argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
    this.calls.push([...argv]);
    this.inputs.push(opts?.input === undefined ? undefined : opts.input.toString());
    this.timeouts.push(opts?.timeoutMs);
    const signal = opts?.signal;
    let stop = () => undefined as void;
    const cancelled = new Promise<never>((_, reject) => {
      stop = () => reject(new InterruptedError(`${this.name}: cancelled: ${quote(argv)}`));
      if (signal?.aborted) stop();
      else signal?.addEventListener('abort', stop, { once: true });
    });
    cancelled.catch(() => undefined);
    const r = signal ? await Promise.race([this.respond(this.name, argv), cancelled]).finally(() => signal.removeEventListener('abort', stop)) : await this.respond(this.name, argv);
    if (r instanceof Error) throw r;
    return { exitCode: 0, stdout: '', stderr: '', durationMs: 0, ...r };
  }
  async stream(argv: readonly string[], opts: StreamOptions): Promise<StreamResult> {
    const r = await this.exec(argv, opts);
    opts.stdout?.write(r.stdout);
    opts.onProgress?.(Buffer.byteLength(r.stdout));
    return { exitCode: r.exitCode, stderr: r.stderr, bytes: Buffer.byteLength(r.stdout), durationMs: 0 };
  }
  async upload(file: FileSpec): Promise<UploadOutcome> {
    const content = file.content.toString();
    if (this.files.get(file.path) === content) return 'unchanged';
    this.files.set(file.path, content);
    return 'written';
  }
}

export function fakePool(respond: Responder = () => undefined): HostPool & { host(name: string): FakeHost } {
  const hosts = new Map<string, FakeHost>();
  const get = (name: string) => {
    let h = hosts.get(name);
    if (!h) {
      h = new FakeHost(name, respond);
      hosts.set(name, h);
    }
    return h;
  };
  return { get, host: get, closeAll: async () => {} };
}
