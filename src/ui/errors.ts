import { ExitCode, isEnssibError } from '../errors.js';
import type { Output } from './output.js';

/** Prints an error the user can act on; a stack only for bugs (or --verbose). Returns the exit code. */
export function printError(out: Output, e: unknown): number {
  const c = out.c;
  if (isEnssibError(e)) {
    out.note(`${c.red('error:')} ${e.message}`);
    for (const d of e.details) out.note(`  ${d}`);
    if (out.verbose && e.cause instanceof Error && e.cause.stack) out.note(c.dim(e.cause.stack));
    return e.exitCode;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  out.note(`${c.red('internal error:')} ${err.message}`);
  out.note(c.dim(err.stack ?? ''));
  out.note('This is a bug in enssib; please report it with the command you ran.');
  return ExitCode.failed;
}
