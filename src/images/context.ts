import { createHash, type Hash } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, OperationError } from '../errors.js';
import { parseDockerignore, type IgnoreRules } from './dockerignore.js';

/**
 * The build context of a service: the files of its folder that .dockerignore
 * keeps, listed once and used twice — hashed for the content tag and packed for
 * the engine — so what is hashed is exactly what is built.
 */
export interface ContextEntry {
  /** POSIX path relative to the context root. */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  /** Executable bit as git records it (any x bit set); never the raw mode, which follows the umask. */
  exec: boolean;
  size: number;
  /** Symlink target. */
  target?: string;
  /** Identity and times of a file, for the hash cache (nanoseconds, as decimal strings). */
  stat?: { dev: string; ino: string; mtimeNs: string; ctimeNs: string };
}

export interface BuildContext {
  dir: string;
  entries: ContextEntry[];
  /** Paths the .dockerignore left out (files and pruned folders), for --verbose. */
  excluded: number;
  rules: IgnoreRules;
}

/** Always sent, whatever .dockerignore says (Docker does the same). */
const ALWAYS = new Set(['Dockerfile', '.dockerignore']);

export function readBuildContext(dir: string): BuildContext {
  let ignoreText = '';
  try {
    ignoreText = readFileSync(join(dir, '.dockerignore'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`${join(dir, '.dockerignore')}: cannot read (${(e as NodeJS.ErrnoException).code})`);
  }
  const rules = parseDockerignore(ignoreText);
  const entries: ContextEntry[] = [];
  let excluded = 0;
  const walk = (abs: string, rel: string) => {
    let names: string[];
    try {
      names = readdirSync(abs);
    } catch (e) {
      throw new ConfigError(`${abs}: cannot read the folder (${(e as NodeJS.ErrnoException).code})`);
    }
    names.sort();
    for (const name of names) {
      const r = rel === '' ? name : `${rel}/${name}`;
      if (rules.excludes(r) && !(rel === '' && ALWAYS.has(name))) {
        excluded++;
        continue;
      }
      const a = join(abs, name);
      const st = lstatSync(a, { bigint: true });
      if (st.isDirectory()) {
        entries.push({ path: r, type: 'dir', exec: true, size: 0 });
        walk(a, r);
      } else if (st.isFile()) {
        entries.push({
          path: r,
          type: 'file',
          exec: (st.mode & 0o111n) !== 0n,
          size: Number(st.size),
          stat: { dev: String(st.dev), ino: String(st.ino), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs) },
        });
      } else if (st.isSymbolicLink()) {
        entries.push({ path: r, type: 'symlink', exec: false, size: 0, target: readlinkSync(a) });
      } else {
        // Sockets, FIFOs and devices cannot be sent to the engine.
        excluded++;
      }
    }
  };
  walk(dir, '');
  return { dir, entries, excluded, rules };
}

const CHUNK = 1024 * 1024;

/**
 * SHA-256 over every entry in path order: its kind, executable bit, path,
 * size and the SHA-256 of its bytes (symlinks: their target). Each field is
 * delimited, so no two different contexts give the same stream.
 *
 * With a cache, a file whose identity and times (device, inode, size, mtime
 * and ctime in nanoseconds) are those recorded when it was last hashed is not
 * read again — git's index does the same. A file changed within a clock tick
 * of being recorded is never trusted from the cache (a second write in the
 * same tick would not change its times).
 */
export function hashContext(ctx: BuildContext, cache?: HashCache): string {
  const h = createHash('sha256');
  h.update('enssib-context-v2\n');
  let buf: Buffer | undefined;
  for (const e of ctx.entries) {
    if (e.type === 'dir') {
      h.update(`d ${e.path}\0`);
    } else if (e.type === 'symlink') {
      h.update(`l ${e.path}\0${e.target ?? ''}\0`);
    } else {
      const abs = join(ctx.dir, e.path);
      let sum = cache?.get(abs, e);
      if (sum === undefined) {
        const fh = createHash('sha256');
        buf = hashFile(fh, abs, e, buf);
        sum = fh.digest('hex');
        cache?.set(abs, e, sum);
      }
      h.update(`f ${e.exec ? '755' : '644'} ${e.path}\0${e.size}\0${sum}\n`);
    }
  }
  return h.digest('hex');
}

function hashFile(h: Hash, abs: string, e: ContextEntry, buf: Buffer | undefined): Buffer | undefined {
  if (e.size <= CHUNK) {
    const data = readFileSync(abs);
    if (data.length !== e.size) throw changed(e.path);
    h.update(data);
    return buf;
  }
  const b = buf ?? Buffer.allocUnsafe(CHUNK);
  const fd = openSync(abs, 'r');
  try {
    let total = 0;
    for (;;) {
      const n = readSync(fd, b, 0, CHUNK, null);
      if (n === 0) break;
      total += n;
      h.update(n === CHUNK ? b : b.subarray(0, n));
    }
    if (total !== e.size) throw changed(e.path);
  } finally {
    closeSync(fd);
  }
  return b;
}

function changed(path: string): OperationError {
  return new OperationError(`${path} changed while enssib was reading it`, ['Run the command again once nothing writes to the service folder.']);
}

/** dev:ino:size:mtimeNs:ctimeNs — what must be unchanged for a recorded file hash to be reused. */
function statKey(e: ContextEntry): string | undefined {
  return e.stat ? `${e.stat.dev}:${e.stat.ino}:${e.size}:${e.stat.mtimeNs}:${e.stat.ctimeNs}` : undefined;
}

/** File hashes of one build context, kept between runs under ~/.cache/enssib/contexts/. */
export class HashCache {
  private readonly old: Map<string, { k: string; h: string }>;
  private readonly now = new Map<string, { k: string; h: string }>();
  private readonly recordedAtNs: bigint;
  private dirty = false;
  /** Files found in the cache / read and hashed, for --verbose. */
  hits = 0;
  misses = 0;

  private constructor(
    private readonly file: string | undefined,
    old: Record<string, { k: string; h: string }>,
    nowMs: number,
  ) {
    this.old = new Map(Object.entries(old));
    this.recordedAtNs = BigInt(Math.floor(nowMs)) * 1_000_000n;
  }

  /**
   * The cache of the context in `dir`, in `cacheDir` (created when saved). A
   * missing or unreadable cache is empty. `nowMs` is for tests.
   */
  static open(cacheDir: string, dir: string, nowMs = Date.now()): HashCache {
    const file = join(cacheDir, `${createHash('sha256').update(dir).digest('hex').slice(0, 24)}.json`);
    let old: Record<string, { k: string; h: string }> = {};
    try {
      const v: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (v && typeof v === 'object' && (v as { v?: unknown }).v === 1 && (v as { dir?: unknown }).dir === dir) {
        old = (v as { files: Record<string, { k: string; h: string }> }).files;
      }
    } catch {
      /* no cache yet, or a broken one: hash everything */
    }
    return new HashCache(file, old, nowMs);
  }

  /** A cache that remembers nothing (tests, --dry-run). */
  static none(): HashCache {
    return new HashCache(undefined, {}, Date.now());
  }

  get(abs: string, e: ContextEntry): string | undefined {
    const k = statKey(e);
    const hit = k ? this.old.get(abs) : undefined;
    if (!hit || hit.k !== k) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.now.set(abs, hit);
    return hit.h;
  }

  set(abs: string, e: ContextEntry, h: string): void {
    const k = statKey(e);
    if (!k || !e.stat) return;
    this.dirty = true;
    // Too fresh to trust next time: a write in the same clock tick would not change
    // the times. ctime is the one to look at: every write sets it, and no one can set
    // it back. Linux stamps files with a clock of a few milliseconds' resolution; a
    // file system with whole-second times (no sub-second part) gets two seconds.
    const ctime = BigInt(e.stat.ctimeNs);
    const window = ctime % 1_000_000_000n === 0n ? 2_000_000_000n : 50_000_000n;
    if (this.recordedAtNs - ctime < window) return;
    this.now.set(abs, { k, h });
  }

  /** Writes the entries of this run (only those: files gone from the context are forgotten). */
  save(dir: string): void {
    if (!this.file || (!this.dirty && this.now.size === this.old.size)) return;
    try {
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ v: 1, dir, files: Object.fromEntries(this.now) }), { mode: 0o600 });
      renameSync(tmp, this.file);
    } catch {
      /* a cache that cannot be written only costs time */
    }
  }
}

/** What besides the files decides the image: the tag is a hash of all of it. */
export interface TagInputs {
  contextDigest: string;
  dockerfile: string;
  buildArgs: Record<string, string>;
  target?: string;
  /** Base image reference → image ID in the engine (null: the engine does not have it / was not asked). */
  bases: Record<string, string | null>;
}

export function contentTag(inputs: TagInputs): string {
  const h = createHash('sha256');
  h.update('enssib-tag-v1\n');
  h.update(`context ${inputs.contextDigest}\n`);
  h.update(`dockerfile ${inputs.dockerfile}\n`);
  for (const k of Object.keys(inputs.buildArgs).sort()) h.update(`arg ${JSON.stringify(k)}=${JSON.stringify(inputs.buildArgs[k])}\n`);
  if (inputs.target !== undefined) h.update(`target ${JSON.stringify(inputs.target)}\n`);
  for (const k of Object.keys(inputs.bases).sort()) h.update(`base ${JSON.stringify(k)} ${inputs.bases[k] ?? '-'}\n`);
  return h.digest('hex').slice(0, 20);
}
