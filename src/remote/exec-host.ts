import { CommandError } from '../errors.js';
import { quote } from './quote.js';
import type { FileSpec, Host, RunOptions, RunResult, StreamOptions, StreamResult, UploadOutcome } from './types.js';

/**
 * A Host whose probes are its commands run in turn and whose `run` is `exec`
 * that throws on a non-zero exit: the local machine, and the unit tests'
 * stand-in hosts. (The ssh host batches its probes in one round trip instead.)
 */
export abstract class ExecHost implements Host {
  abstract readonly name: string;
  abstract exec(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  abstract stream(argv: readonly string[], opts: StreamOptions): Promise<StreamResult>;
  abstract upload(file: FileSpec): Promise<UploadOutcome>;

  describe(argv: readonly string[]): string {
    return quote(argv);
  }

  async probe(checks: readonly (readonly string[])[], opts?: RunOptions): Promise<RunResult[]> {
    const out: RunResult[] = [];
    for (const c of checks) out.push(await this.exec(c, opts));
    return out;
  }

  async run(argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
    const r = await this.exec(argv, opts);
    if (r.exitCode !== 0) throw new CommandError(this.name, quote(argv), r.exitCode, r.stderr);
    return r;
  }

  async close(): Promise<void> {}
}
