import { asEnssibError, CommandError, tail } from '../errors.js';
import type { ErrorReport } from './types.js';

/**
 * Any thrown value as a report's error: its message, details and exit code
 * (a failed command's also with the command, its exit code and the end of its stderr).
 * Its own module, so that a command reporting without the runner (task-report.ts) does not load it.
 */
export function errorReport(e: unknown): ErrorReport {
  if (e instanceof CommandError) {
    return { message: e.message, details: tail(e.stderr, 8), command: e.command, remoteExitCode: e.code, exitCode: e.exitCode };
  }
  const err = asEnssibError(e);
  return { message: err.message, details: err.details, exitCode: err.exitCode };
}
