/**
 * Small POSIX sh scripts that enssib runs as `sh -c SCRIPT NAME ARGS…` (values
 * always as positional arguments, never pasted into the script), written as
 * lines for reading and joined into one line so that a dry run prints each
 * command on one line.
 */
export function oneLine(lines: readonly string[]): string {
  let out = '';
  for (const raw of lines) {
    const l = raw.trim();
    if (l === '') continue;
    if (out === '') out = l;
    else out += /(\bdo|\bthen|\belse|\{|\||&&)$/.test(out) ? ` ${l}` : `; ${l}`;
  }
  return out;
}
