import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { oneLine } from './shell.js';

/**
 * The storage lock: one file on the inventory's metadata host, created
 * atomically (`set -C`, O_EXCL) and holding who owns it. Concurrent `volume
 * create|resize|delete` (and backup snapshots and restores) wait for it up to
 * a limit, then fail saying who holds it; release removes the file only if it
 * is still ours (our random token).
 *
 * It lives in a directory only the user enssib runs as (root) can write —
 * /run/enssib, mode 0700 — never in a world-writable one such as /run/lock,
 * where any local user could take or block it. /run is emptied at boot, and a
 * reboot of the metadata host ends any operation. The file says who holds it:
 * the user, the admin host, enssib's pid there, the start time and the command
 * (first line), and the holder's ssh session on the metadata host (second
 * line: the sshd process's pid and start time), by which `enssib lock break`
 * tells a live holder from a stale lock.
 */

export const DEFAULT_LOCK_FILE = '/run/enssib/storage.lock';
/** Exit code of the acquire script when the lock stays held (EX_TEMPFAIL). */
export const LOCK_HELD_EXIT = 75;

export interface LockOwner {
  token: string;
  user: string;
  host: string;
  pid: number | string;
  since: string;
  command: string;
}

export function lockOwner(argv: readonly string[], now = new Date(), token = randomBytes(8).toString('hex')): LockOwner {
  let user = 'unknown';
  try {
    user = process.env.SUDO_USER ?? userInfo().username;
  } catch {
    /* no passwd entry */
  }
  return { token, user, host: hostname(), pid: process.pid, since: now.toISOString(), command: argv.join(' ') };
}

/** The owner a client dry run shows: placeholders where a real run puts its token, pid and time. */
export function placeholderOwner(argv: readonly string[]): LockOwner {
  return { ...lockOwner(argv, new Date(0), '<token>'), pid: '<pid>', since: '<time>' };
}

/** One line, `key=value` pairs; the command comes last and may contain spaces. */
export function formatOwner(o: LockOwner): string {
  const safe = (s: string) => s.replace(/[\r\n]/g, ' ');
  return `token=${o.token} user=${safe(o.user)} host=${safe(o.host)} pid=${o.pid} since=${o.since} command=${safe(o.command)}`;
}

/** "alice@laptop (pid 4242) since 2026-11-28T10:00:00Z: enssib volume create mail 200G" from the file's line. */
export function describeOwner(line: string): string {
  const m = /user=(\S*) host=(\S*) pid=(\d+) since=(\S*) command=(.*)$/.exec(line.trim());
  if (!m) return line.trim() || 'an unknown owner';
  return `${m[1]}@${m[2]} (pid ${m[3]}) since ${m[4]}: ${m[5]}`;
}

/** The ssh session this script runs in: the nearest sshd ancestor's pid and start time (/proc), "0 0" when none. */
const SESSION = oneLine([
  'p=$PPID',
  'while [ "${p:-0}" -gt 1 ]; do',
  '  case $(cat "/proc/$p/comm" 2>/dev/null) in sshd | sshd-session) break ;; esac',
  '  p=$(sed -n "s/^PPid:[[:space:]]*//p" "/proc/$p/status" 2>/dev/null)',
  'done',
  'if [ "${p:-0}" -gt 1 ]; then session="$p $(cut -d" " -f22 "/proc/$p/stat")"; else session="0 0"; fi',
]);

/** Refuses a lock directory that another user could write (owner other than us, or group/other write). */
const ROOT_ONLY_DIR = oneLine([
  'd=$(dirname "$f")',
  '[ -d "$d" ] || mkdir -p -m 0700 "$d" || exit 1',
  'st=$(stat -c "%u %a" "$d") || exit 1',
  'set -- $st',
  'case $2 in *[2367]? | *[2367]) echo "enssib: the lock directory $d is writable by other users (mode $2): any user could take or block the lock; use a directory only root can write (default /run/enssib)" >&2; exit 1 ;; esac',
  '[ "$1" = "$(id -u)" ] || { echo "enssib: the lock directory $d belongs to uid $1, not to $(id -u)" >&2; exit 1; }',
]);

const ACQUIRE = oneLine([
  'f=$1 owner=$2 wait=$3 i=0',
  ROOT_ONLY_DIR,
  SESSION,
  'while :; do',
  '  if (set -C; printf "%s\\nsession=%s\\n" "$owner" "$session" > "$f") 2>/dev/null; then exit 0; fi',
  '  [ -f "$f" ] || { echo "enssib: cannot create the lock file $f" >&2; exit 1; }',
  '  if [ "$i" -ge "$wait" ]; then',
  '    printf "enssib: the storage lock %s is held by: %s\\n" "$f" "$(head -n1 "$f" 2>/dev/null)" >&2',
  `    exit ${LOCK_HELD_EXIT}`,
  '  fi',
  '  [ "$i" -eq 0 ] && printf "enssib: waiting for the storage lock held by: %s\\n" "$(head -n1 "$f" 2>/dev/null)" >&2',
  '  sleep 1; i=$((i + 1))',
  'done',
]);

/** Removes the file only while it carries the token; a file left behind says "lock still held". */
const RELEASE = oneLine([
  'f=$1 token=$2',
  'if [ -f "$f" ] && grep -q "^token=$token " "$f"; then',
  '  rm -f "$f" && exit 0',
  '  echo "enssib: lock still held: cannot remove $f" >&2; exit 1',
  'fi',
]);

/**
 * Read-only: "free", or "held", the file, and "alive=yes|no|unknown": whether
 * the holder's ssh session (pid and start time from the file) still runs.
 */
const STATUS = oneLine([
  'f=$1',
  'if [ ! -e "$f" ]; then echo free; exit 0; fi',
  'c=$(cat "$f") || exit 1',
  'printf "held\\n%s\\n" "$c"',
  's=$(printf "%s\\n" "$c" | sed -n "s/^session=\\([0-9]*\\) \\([0-9]*\\)$/\\1 \\2/p")',
  'set -- $s',
  'if [ "${1:-0}" -le 1 ]; then echo alive=unknown',
  'elif kill -0 "$1" 2>/dev/null && [ "$(cut -d" " -f22 "/proc/$1/stat" 2>/dev/null)" = "$2" ]; then echo alive=yes',
  'else echo alive=no; fi',
]);

/** Waits up to `waitS` seconds for the lock, then exits 75 with the owner on stderr. */
export function acquireArgv(file: string, owner: LockOwner, waitS: number): string[] {
  return ['sh', '-c', ACQUIRE, 'enssib-lock', file, formatOwner(owner), String(Math.max(0, Math.floor(waitS)))];
}

/** Removes the lock only while it still carries our token (or the token of the lock being broken). */
export function releaseArgv(file: string, owner: Pick<LockOwner, 'token'>): string[] {
  return ['sh', '-c', RELEASE, 'enssib-unlock', file, owner.token];
}

export function lockStatusArgv(file: string): string[] {
  return ['sh', '-c', STATUS, 'enssib-lock-status', file];
}

export interface LockStatus {
  held: boolean;
  /** The token of the holder (to break exactly that lock). */
  token: string | null;
  /** "alice@laptop (pid 4242) since …: enssib volume create mail 200G". */
  holder: string | null;
  /** The holder's ssh session on the metadata host: sshd pid, or null when the file does not say. */
  sessionPid: number | null;
  /** Whether that session still runs (unknown: the file does not say, e.g. a lock taken without ssh). */
  alive: 'yes' | 'no' | 'unknown';
}

/** What `lockStatusArgv` printed; a failed read is an error, never "free". */
export function parseLockStatus(r: { exitCode: number; stdout: string; stderr: string }): LockStatus {
  if (r.exitCode !== 0) throw new Error(`cannot read the lock (exit code ${r.exitCode}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').pop()}` : ''})`);
  const lines = r.stdout.split('\n').map((l) => l.trim());
  if (lines[0] === 'free') return { held: false, token: null, holder: null, sessionPid: null, alive: 'unknown' };
  if (lines[0] !== 'held') throw new Error(`cannot read the lock: unexpected answer ${JSON.stringify(lines[0] ?? '')}`);
  const owner = lines[1] ?? '';
  const session = lines.map((l) => /^session=(\d+) \d+$/.exec(l)).find(Boolean);
  const alive = lines.map((l) => /^alive=(yes|no|unknown)$/.exec(l)?.[1]).find(Boolean) as LockStatus['alive'] | undefined;
  const pid = session ? Number(session[1]) : 0;
  return { held: true, token: /^token=(\S+) /.exec(owner)?.[1] ?? null, holder: describeOwner(owner), sessionPid: pid > 1 ? pid : null, alive: alive ?? 'unknown' };
}

/** The owner line from the acquire script's stderr when the lock stayed held. */
export function heldBy(stderr: string): string | null {
  const m = /held by: (.*)$/m.exec(stderr);
  return m ? describeOwner(m[1] ?? '') : null;
}
