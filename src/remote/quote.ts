/**
 * The one POSIX shell quoting function. A remote command is an argv array; this
 * turns it into the single line ssh hands to the remote shell, so that what the
 * remote program receives is byte-identical to the array.
 */
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function quoteArg(arg: string): string {
  if (arg.length > 0 && SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function quote(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('quote: empty argv');
  return argv.map(quoteArg).join(' ');
}
