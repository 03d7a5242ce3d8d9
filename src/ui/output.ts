import type { Writable } from 'node:stream';

export type OutputFormat = 'text' | 'json';

/**
 * The one output layer: results on stdout (text or one JSON document),
 * messages, warnings and progress on stderr.
 */
export interface Output {
  readonly format: OutputFormat;
  readonly verbose: boolean;
  readonly c: Colors;
  /** A result line on stdout (text mode only). */
  line(text?: string): void;
  /** A note on stderr (text mode; in JSON mode too, since stdout stays clean). */
  note(text: string): void;
  warn(text: string): void;
  /** Only with --verbose. */
  debug(text: string): void;
  /** The command's one JSON document (JSON mode only). */
  json(value: unknown): void;
  /** One compact JSON line (JSON mode only): for a command whose result is JSON lines (`journal`). */
  jsonLine(value: unknown): void;
  /** Prints text or JSON depending on --output. */
  result(json: () => unknown, text: () => string[]): void;
  table(headers: string[], rows: string[][]): string[];
}

export interface OutputOptions {
  format: OutputFormat;
  color: boolean;
  verbose: boolean;
  stdout?: Writable;
  stderr?: Writable;
}

/**
 * A reader that stops early (`enssib … | head`, quitting `less`) closes the pipe:
 * from then on writes to that stream are dropped instead of crashing with EPIPE,
 * and the command finishes as it would have (as `git log | head` does).
 */
export function quietOnBrokenPipe(stream: NodeJS.WritableStream): void {
  const s = stream as NodeJS.WritableStream & { enssibPipeGuard?: true };
  if (s.enssibPipeGuard) return;
  s.enssibPipeGuard = true;
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') return;
    throw e;
  });
}

/** Writes unless the reader has gone (see quietOnBrokenPipe). */
export function writeUnlessClosed(stream: NodeJS.WritableStream, text: string): void {
  if (!(stream as { destroyed?: boolean }).destroyed) stream.write(text);
}

export function colorLevel(flag: boolean, env: NodeJS.ProcessEnv, isTTY: boolean): 0 | 1 | 2 | 3 {
  if (!flag || (env.NO_COLOR !== undefined && env.NO_COLOR !== '') || env.TERM === 'dumb' || !isTTY) return 0;
  if (env.COLORTERM === 'truecolor' || env.COLORTERM === '24bit') return 3;
  return /256/.test(env.TERM ?? '') ? 2 : 1;
}

/** The styles enssib's output uses. */
export interface Colors {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  green(text: string): string;
  cyan(text: string): string;
}

const STYLES: Record<keyof Colors, [number, number]> = { bold: [1, 22], dim: [2, 22], red: [31, 39], yellow: [33, 39], green: [32, 39], cyan: [36, 39] };

/**
 * The ANSI codes chalk writes for these styles, without loading it (a package
 * of four modules for six codes): a style inside another of its kind is
 * re-opened after it closes, and each line is closed and opened again, so
 * that a pager or a split line keeps its colour.
 */
export function colors(on: boolean): Colors {
  const style = ([open, close]: [number, number]) => {
    const o = `\x1b[${open}m`;
    const c = `\x1b[${close}m`;
    return (text: string): string => {
      if (!on || text === '') return text;
      const t = text.includes('\x1b') ? text.split(c).join(c + o) : text;
      return o + t.replace(/\r?\n/g, (nl) => c + nl + o) + c;
    };
  };
  return Object.fromEntries(Object.entries(STYLES).map(([k, v]) => [k, style(v)])) as unknown as Colors;
}

export function createOutput(o: OutputOptions): Output {
  const stdout = o.stdout ?? process.stdout;
  const stderr = o.stderr ?? process.stderr;
  const c = colors(o.color && colorLevel(true, process.env, (stdout as { isTTY?: boolean }).isTTY === true) > 0);
  const write = (s: Writable, t: string) => writeUnlessClosed(s, `${t}\n`);
  return {
    format: o.format,
    verbose: o.verbose,
    c,
    line: (t = '') => {
      if (o.format === 'text') write(stdout, t);
    },
    note: (t) => write(stderr, t),
    warn: (t) => write(stderr, `${c.yellow('warning:')} ${t}`),
    debug: (t) => {
      if (o.verbose) write(stderr, c.dim(t));
    },
    json: (v) => {
      if (o.format === 'json') write(stdout, JSON.stringify(v, null, 2));
    },
    jsonLine: (v) => {
      if (o.format === 'json') write(stdout, JSON.stringify(v));
    },
    result(json, text) {
      if (o.format === 'json') write(stdout, JSON.stringify(json(), null, 2));
      else for (const l of text()) write(stdout, l);
    },
    table(headers, rows) {
      const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
      const fmt = (r: string[]) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
      return [c.bold(fmt(headers)), ...rows.map(fmt)];
    },
  };
}
