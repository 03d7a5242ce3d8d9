import { OperationError } from '../errors.js';
import { quote, quoteArg } from '../remote/quote.js';
import type { RunResult } from '../remote/types.js';
import type { Retention } from './retention.js';
import type { BackupRemote } from './site.js';

/**
 * The `borg` method's commands, run on the metadata storage server (Debian's
 * borgbackup): the snapshot device read with `--read-special` into a
 * repository at the destination (a folder there, or on the backup host over
 * ssh, where borg must be installed too), deduplicated and encrypted
 * (repokey-blake2).
 *
 * The passphrase is never on a command line, in the output or in the journal:
 * borg runs `cat <file>` itself (BORG_PASSCOMMAND) to read it from the
 * root-only file the inventory names; only that file's path is in the argv.
 */

export interface BorgRepo {
  /** The repository's folder: `<destination>/borg`. */
  path: string;
  remote: BackupRemote | null;
  /** Root-only file on the metadata host holding the passphrase. */
  passphraseFile: string;
}

/** The repository as borg names it: a path, or ssh://user@host:port/path. */
export function repoLocation(r: BorgRepo): string {
  if (!r.remote) return r.path;
  const { user, host, port } = r.remote;
  return `ssh://${user ? `${user}@` : ''}${host}${port ? `:${port}` : ''}${r.path}`;
}

/** `env` with borg's settings, then the borg command: the passphrase's file, the ssh borg uses, no prompt ever. */
export function borgArgv(r: BorgRepo, args: readonly string[]): string[] {
  return [
    'env',
    `BORG_PASSCOMMAND=cat -- ${quoteArg(r.passphraseFile)}`,
    'BORG_RSH=ssh -o BatchMode=yes -o StrictHostKeyChecking=yes',
    'BORG_RELOCATED_REPO_ACCESS_IS_OK=no',
    'BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=no',
    'BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=NO',
    'BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=NO',
    'borg',
    ...args,
  ];
}

/**
 * Initialises the repository when there is none: `borg info` answers for an
 * existing one (nothing done); otherwise `borg init --encryption=repokey-blake2`,
 * which itself refuses a folder that exists and is not empty — enssib never
 * takes over a folder that is not its repository.
 */
export function initArgv(r: BorgRepo): string[] {
  const info = borgArgv(r, ['info', repoLocation(r)]);
  const init = borgArgv(r, ['init', '--encryption=repokey-blake2', '--make-parent-dirs', repoLocation(r)]);
  return ['sh', '-c', `${quote(info)} >/dev/null 2>&1 || exec ${quote(init)}`];
}

/**
 * Archive name: the backup id (`<volume>.<YYYYMMDD>T<HHMMSS>Z`), its time the
 * id's (prune counts days, weeks and months by it). Fixed 1 MiB chunks, as
 * for any block device: a MiB changed in place costs about a MiB.
 */
export function createArgv(r: BorgRepo, archive: string, device: string, at: Date): string[] {
  const time = at.toISOString().replace(/\.\d{3}Z$/, '');
  return borgArgv(r, ['create', '--json', '--read-special', '--chunker-params', 'fixed,1048576', '--compression', 'zstd,3', '--timestamp', time, `${repoLocation(r)}::${archive}`, device]);
}

/**
 * `borg create` (its argv after the device) with how far it got: borg's
 * stdout (its `--json` answer) goes to a temporary file, and every second the
 * script prints the offset of borg's open file on the device (found among
 * `/proc/<borg>/fd`), the bytes read so far; at the end, the answer. Only
 * numbers and the answer are on its stdout. The loop starts no process (bash
 * builtins: `-ef` finds the device's descriptor, `read` its offset, and a read
 * that times out on a pipe nobody writes is the pause).
 */
const CREATE_PROGRESS = [
  'dev=$1; shift',
  'out=$(mktemp -t enssib-borg-create.XXXXXX) || exit 1',
  'trap \'rm -f -- "$out"\' EXIT',
  '"$@" > "$out" &',
  'c=$! n=0 fd=',
  'exec 8<> <(:)',
  'while kill -0 "$c" 2>/dev/null; do',
  '  if [ $((n % 5)) = 0 ]; then',
  '    if [ -z "$fd" ] || ! [ "/proc/$c/fd/$fd" -ef "$dev" ]; then',
  '      fd=; for f in /proc/"$c"/fd/*; do [ "$f" -ef "$dev" ] && { fd=${f##*/}; break; }; done',
  '    fi',
  '    [ -n "$fd" ] && while read -r k v; do [ "$k" = pos: ] && { echo "$v"; break; }; done 2>/dev/null < "/proc/$c/fdinfo/$fd"',
  '  fi',
  '  n=$((n + 1)); read -r -t 0.2 -u 8 _',
  'done',
  'wait "$c"; r=$?',
  'cat -- "$out"',
  'exit "$r"',
].join('\n');

export function createWithProgressArgv(r: BorgRepo, archive: string, device: string, at: Date): string[] {
  return ['bash', '-c', CREATE_PROGRESS, 'enssib-borg-create', device, ...createArgv(r, archive, device, at)];
}

export interface BorgCreateStats {
  archive: string;
  /** Bytes read from the device. */
  originalBytes: number;
  compressedBytes: number;
  /** Bytes this archive added to the repository. */
  deduplicatedBytes: number;
  durationMs: number;
  start: string;
}

/** `borg create --json`'s answer, checked. */
export function parseCreate(r: RunResult): BorgCreateStats {
  if (r.exitCode !== 0) throw new OperationError(`borg create failed (exit code ${r.exitCode})`, r.stderr.trim().split('\n').slice(-3));
  let j: { archive?: { name?: unknown; start?: unknown; duration?: unknown; stats?: { original_size?: unknown; compressed_size?: unknown; deduplicated_size?: unknown } } };
  try {
    j = JSON.parse(r.stdout) as typeof j;
  } catch {
    throw new OperationError(`borg create's answer is not JSON: ${JSON.stringify(r.stdout.slice(0, 120))}`);
  }
  const a = j.archive;
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : NaN);
  const out = { archive: String(a?.name ?? ''), originalBytes: n(a?.stats?.original_size), compressedBytes: n(a?.stats?.compressed_size), deduplicatedBytes: n(a?.stats?.deduplicated_size), durationMs: Math.round(n(a?.duration) * 1000), start: String(a?.start ?? '') };
  if (!out.archive || [out.originalBytes, out.compressedBytes, out.deduplicatedBytes, out.durationMs].some(Number.isNaN)) throw new OperationError(`borg create's answer lacks the archive's stats: ${JSON.stringify(r.stdout.slice(0, 200))}`);
  return out;
}

/** The inventory's retention, per volume (the archives named `<volume>.…`); `dryRun` lists what would go. */
export function pruneArgv(r: BorgRepo, volume: string, keep: Retention, dryRun: boolean): string[] {
  const counts = (['daily', 'weekly', 'monthly'] as const).flatMap((k) => (keep[k] ? [`--keep-${k}`, String(keep[k])] : []));
  return borgArgv(r, ['prune', ...(dryRun ? ['--dry-run'] : []), '--list', '--glob-archives', `${volume}.*`, ...counts, repoLocation(r)]);
}

/** Frees the space of pruned archives (borg 1.2 prune only marks it). */
export function compactArgv(r: BorgRepo): string[] {
  return borgArgv(r, ['compact', repoLocation(r)]);
}

/** What `borg prune --list` says it keeps and prunes (its stderr), by archive name. */
export function parsePruneList(stderr: string): { keep: string[]; prune: string[] } {
  const keep: string[] = [];
  const prune: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^(Keeping archive|Would prune|Pruning archive)(?: \([^)]*\))?:\s+(\S+)/.exec(line.trim());
    if (!m) continue;
    (m[1] === 'Keeping archive' ? keep : prune).push(m[2] as string);
  }
  return { keep, prune };
}

export function checkArgv(r: BorgRepo, verifyData: boolean): string[] {
  return borgArgv(r, ['check', ...(verifyData ? ['--verify-data'] : []), repoLocation(r)]);
}

export function listArgv(r: BorgRepo): string[] {
  return borgArgv(r, ['list', '--json', repoLocation(r)]);
}

/** The archive's one file (the device) onto `device`, synced; borg checks each chunk's MAC as it reads. */
const EXTRACT = ['set -o pipefail', 'dev=$1; shift', '"$@" | dd of="$dev" bs=4M iflag=fullblock conv=fsync status=none'].join('\n');

export function extractArgv(r: BorgRepo, archive: string, device: string): string[] {
  return ['bash', '-c', EXTRACT, 'enssib-borg-extract', device, ...borgArgv(r, ['extract', '--stdout', `${repoLocation(r)}::${archive}`])];
}

/** Removes one archive (a backup whose snapshot turned out invalid, or whose run was undone); an archive already gone is no error. */
export function deleteArgv(r: BorgRepo, archive: string): string[] {
  return ['sh', '-c', DELETE, 'enssib-borg-delete', archive, ...borgArgv(r, ['delete', `${repoLocation(r)}::${archive}`])];
}
/** `borg delete` of an archive that is not there (1.2: "Archive … does not exist", exit 1 or 2) is what was wanted. */
const DELETE = ['a=$1; shift', 'out=$("$@" 2>&1) && exit 0', 'r=$?', 'case $out in *"$a"*"does not exist"*) exit 0 ;; esac', 'printf "%s\\n" "$out" >&2', 'exit "$r"'].join('\n');

/** Answers (exit 0) only when the archive is in the repository and readable with the passphrase. */
export function infoArgv(r: BorgRepo, archive: string): string[] {
  return borgArgv(r, ['info', '--json', `${repoLocation(r)}::${archive}`]);
}

/** The archives' names in `borg list --json`'s answer. */
export function archiveNames(stdout: string): string[] {
  let j: { archives?: unknown };
  try {
    j = JSON.parse(stdout) as typeof j;
  } catch {
    throw new OperationError(`borg list's answer is not JSON: ${JSON.stringify(stdout.slice(0, 120))}`);
  }
  if (!Array.isArray(j.archives)) throw new OperationError(`borg list's answer has no archives: ${JSON.stringify(stdout.slice(0, 120))}`);
  return (j.archives as { name?: unknown }[]).flatMap((a) => (typeof a.name === 'string' ? [a.name] : []));
}
