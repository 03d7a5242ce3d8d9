import { ExitCode } from '../errors.js';

/**
 * The exit codes, as data: the end of `enssib --help`, `enssib help exit-codes`
 * and the README's table (reference.ts). Apart from the rest of the reference
 * text, which a command that runs never needs to load.
 */

export const EXIT_CODES: { code: ExitCode; short: string; meaning: string }[] = [
  { code: ExitCode.ok, short: 'ok', meaning: 'success (or no differences)' },
  { code: ExitCode.failed, short: 'failed', meaning: 'failed (nothing answered, or the operation failed and was undone; `doctor`: a check FAILed)' },
  { code: ExitCode.usage, short: 'usage or configuration error', meaning: 'usage or configuration error (bad flag, bad name or size, invalid inventory)' },
  { code: ExitCode.partial, short: 'partial failure', meaning: 'partial failure: some hosts failed or did not answer, the others are done (`backup snapshot`: some volumes failed, the others are backed up)' },
  { code: ExitCode.differences, short: 'differences found', meaning: 'differences found (`service diff`, check commands)' },
  { code: ExitCode.interrupted, short: 'interrupted', meaning: 'interrupted (Ctrl-C, or a confirmation answered no): what the run did is undone, its locks released' },
  { code: ExitCode.terminated, short: 'SIGTERM', meaning: 'interrupted by SIGTERM (undone and released as for Ctrl-C)' },
  { code: ExitCode.hangup, short: 'SIGHUP', meaning: 'interrupted by SIGHUP, the terminal went away (undone and released as for Ctrl-C)' },
];

/** Words of text in lines of at most `width` characters, each starting with `indent`. */
export const wrap = (text: string, width = 78, indent = ''): string[] => {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(/\s+/)) {
    if (line && line.length + 1 + w.length > width - indent.length) {
      out.push(indent + line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(indent + line);
  return out;
};

/** The short exit-code line at the end of `enssib --help`. */
export function exitCodesLine(): string[] {
  return wrap(`Exit codes: ${EXIT_CODES.map((e) => `${e.code} ${e.short}`).join(', ')}.`, 80);
}
