/** What a host session runs and returns: plain data, shared by the engine and the remote layer. */

export interface RunOptions {
  /** Per-command time limit in milliseconds (default: the session's). */
  timeoutMs?: number;
  /** Bytes sent to the command's standard input. */
  input?: string | Buffer;
  /** Run as root through `sudo -n` when the session's user is not root (default true). */
  sudo?: boolean;
  /**
   * Cancels the command when aborted: it is stopped on the host (its process
   * group killed) and exec rejects with an InterruptedError once the host
   * confirmed, or once the host failed to answer in time.
   */
  signal?: AbortSignal;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** A command whose output or input is streamed (never held in memory): backups, copies between hosts. */
export interface StreamOptions extends Omit<RunOptions, 'input'> {
  /** Where the command's stdout goes as it comes: a file, or another host's stdin (a PassThrough). */
  stdout?: NodeJS.WritableStream;
  /** The command's stdin, streamed; its end ends the command's input. */
  stdin?: NodeJS.ReadableStream;
  /** Called as stdout flows, with the bytes so far. */
  onProgress?: (bytes: number) => void;
}

export interface StreamResult {
  exitCode: number;
  stderr: string;
  /** Bytes of stdout passed on. */
  bytes: number;
  durationMs: number;
}

export interface FileSpec {
  path: string;
  content: string | Buffer;
  /** Octal mode such as "0644" (default "0644"). */
  mode?: string;
  /** "user:group" (default root:root). */
  owner?: string;
}

export type UploadOutcome = 'written' | 'unchanged';

/** One host reachable for commands; the ssh implementation is HostSession. */
export interface Host {
  readonly name: string;
  /** Runs argv and resolves with its exit code: a non-zero exit is a result, not an error. Connection failures and timeouts throw. */
  exec(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Runs argv with its stdout and/or stdin streamed; a non-zero exit is a result, as with exec. */
  stream(argv: readonly string[], opts: StreamOptions): Promise<StreamResult>;
  /** Runs read-only checks (as root) in one round trip; each result as exec would return it. */
  probe(checks: readonly (readonly string[])[], opts?: RunOptions): Promise<RunResult[]>;
  /** Like exec, but a non-zero exit throws CommandError. */
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Writes a file atomically (temp file + rename) only when its content, mode or owner differ. */
  upload(file: FileSpec, opts?: { timeoutMs?: number }): Promise<UploadOutcome>;
  /** The command line as sent over ssh (for messages). */
  describe(argv: readonly string[], opts?: RunOptions): string;
  /**
   * Closes the shared (master) connection. Also how a connection is re-opened
   * after a network change (MTU, routes): the next command opens a new one.
   */
  close(): Promise<void>;
}
