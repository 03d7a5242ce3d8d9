/**
 * The one error hierarchy of enssib. Every error a user can cause or meet is an
 * EnssibError with an exit code; anything else reaching the top is a bug and is
 * printed with its stack.
 */

export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  partial: 3,
  differences: 4,
  interrupted: 130,
  /** Interrupted by SIGTERM (128 + 15). */
  terminated: 143,
  /** Interrupted by SIGHUP (128 + 1): the terminal went away. */
  hangup: 129,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The exit code of a run interrupted by each signal (128 + its number). */
export const SIGNAL_EXIT = { SIGINT: ExitCode.interrupted, SIGTERM: ExitCode.terminated, SIGHUP: ExitCode.hangup } as const;
export type InterruptSignal = keyof typeof SIGNAL_EXIT;

/**
 * The exit code of a run that the abort signal interrupted: the CLI aborts it
 * with the name of the signal it received as the reason (130 otherwise).
 */
export function interruptedExitCode(signal?: AbortSignal): ExitCode {
  const reason: unknown = signal?.reason;
  return typeof reason === 'string' && Object.hasOwn(SIGNAL_EXIT, reason) ? SIGNAL_EXIT[reason as InterruptSignal] : ExitCode.interrupted;
}

export class EnssibError extends Error {
  readonly exitCode: ExitCode;
  /** Extra lines shown under the message (hints, the failing command, stderr tail). */
  readonly details: string[];
  constructor(message: string, opts: { exitCode?: ExitCode; details?: string[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? ExitCode.failed;
    this.details = opts.details ?? [];
  }
}

/** Wrong command line: unknown command or flag, missing argument, malformed name or size. */
export class UsageError extends EnssibError {
  constructor(message: string, details: string[] = []) {
    super(message, { exitCode: ExitCode.usage, details });
  }
}

/** A problem in inventory.yaml, a service folder or another configuration file. */
export class ConfigError extends EnssibError {
  constructor(message: string, details: string[] = []) {
    super(message, { exitCode: ExitCode.usage, details });
  }
}

/** Something on a host, the registry or the API server failed. */
export class OperationError extends EnssibError {
  constructor(message: string, details: string[] = [], cause?: unknown) {
    super(message, { exitCode: ExitCode.failed, details, cause });
  }
}

/** Some hosts failed while others finished. */
export class PartialFailureError extends EnssibError {
  constructor(message: string, details: string[] = []) {
    super(message, { exitCode: ExitCode.partial, details });
  }
}

/** The user said no, or pressed Ctrl-C. */
export class InterruptedError extends EnssibError {
  constructor(message = 'interrupted', details: string[] = []) {
    super(message, { exitCode: ExitCode.interrupted, details });
  }
}

/** A remote command could not reach its host (ssh exit 255, refused, no route, host key mismatch). */
export class ConnectionError extends OperationError {
  readonly host: string;
  constructor(host: string, message: string, details: string[] = []) {
    super(`${host}: ${message}`, details);
    this.host = host;
  }
}

/**
 * A remote command ran past its time limit: either the host stopped it (its
 * process group was killed there) or the host did not answer at all, and the
 * command may still run there.
 */
export class TimeoutError extends OperationError {
  readonly host: string;
  readonly stoppedOnHost: boolean;
  constructor(host: string, command: string, ms: number, opts: { stoppedOnHost?: boolean } = {}) {
    super(opts.stoppedOnHost ? `${host}: stopped after ${formatMs(ms)} (time limit)` : `${host}: no answer after ${formatMs(ms)}`, [
      `command: ${command}`,
      opts.stoppedOnHost ? 'It was stopped on the host (its process group killed).' : 'The host did not answer: the command may still be running there.',
    ]);
    this.host = host;
    this.stoppedOnHost = opts.stoppedOnHost === true;
  }
}

/** A remote command exited non-zero. */
export class CommandError extends OperationError {
  readonly host: string;
  readonly command: string;
  readonly code: number;
  readonly stderr: string;
  constructor(host: string, command: string, code: number, stderr: string) {
    super(`${host}: command failed with exit code ${code}`, [`command: ${command}`, ...tail(stderr, 8).map((l) => `  ${l}`)]);
    this.host = host;
    this.command = command;
    this.code = code;
    this.stderr = stderr;
  }
}

export function tail(text: string, lines: number): string[] {
  const all = text.replace(/\s+$/, '').split('\n');
  return all[0] === '' && all.length === 1 ? [] : all.slice(-lines);
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s` : `${ms} ms`;
}

export function isEnssibError(e: unknown): e is EnssibError {
  return e instanceof EnssibError;
}

/**
 * Any thrown value as an EnssibError: an EnssibError as it is; anything else is
 * a bug, shown as "internal error" with the top of its stack.
 */
export function asEnssibError(e: unknown): EnssibError {
  if (isEnssibError(e)) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  return new OperationError(`internal error: ${err.message}`, (err.stack ?? '').split('\n').slice(1, 6), err);
}

/** An error's message and detail lines, as reports and JSON output carry them. */
export function errorSummary(e: unknown): { message: string; details: string[] } {
  const err = asEnssibError(e);
  return { message: err.message, details: err.details };
}
