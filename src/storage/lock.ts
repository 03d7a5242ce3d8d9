import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { oneLine } from './shell.js';

/**
 * The storage lock: one file on the inventory's metadata host, created
 * atomically (`set -C`, O_EXCL) and holding who owns it. Concurrent `volume
 * create|resize|delete` (and backup snapshots and restores) wait for it up to
 * a limit, then fail saying who holds it; release removes the file only if it
 * is still ours (our random token). It lives under /run/lock by default, so a
 * reboot of the metadata host — which ends any operation — also ends the lock.
 */

export const DEFAULT_LOCK_FILE = '/run/lock/enssib-storage.lock';
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

const ACQUIRE = oneLine([
  'f=$1 owner=$2 wait=$3 i=0',
  'mkdir -p "$(dirname "$f")" || exit 1',
  'while :; do',
  '  if (set -C; printf "%s\\n" "$owner" > "$f") 2>/dev/null; then exit 0; fi',
  '  [ -f "$f" ] || { echo "enssib: cannot create the lock file $f" >&2; exit 1; }',
  '  if [ "$i" -ge "$wait" ]; then',
  '    printf "enssib: the storage lock %s is held by: %s\\n" "$f" "$(cat "$f" 2>/dev/null)" >&2',
  `    exit ${LOCK_HELD_EXIT}`,
  '  fi',
  '  [ "$i" -eq 0 ] && printf "enssib: waiting for the storage lock held by: %s\\n" "$(cat "$f" 2>/dev/null)" >&2',
  '  sleep 1; i=$((i + 1))',
  'done',
]);

const RELEASE = oneLine(['f=$1 token=$2', 'if [ -f "$f" ] && grep -q "^token=$token " "$f"; then rm -f "$f"; fi']);

/** Waits up to `waitS` seconds for the lock, then exits 75 with the owner on stderr. */
export function acquireArgv(file: string, owner: LockOwner, waitS: number): string[] {
  return ['sh', '-c', ACQUIRE, 'enssib-lock', file, formatOwner(owner), String(Math.max(0, Math.floor(waitS)))];
}

/** Removes the lock only while it still carries our token. */
export function releaseArgv(file: string, owner: LockOwner): string[] {
  return ['sh', '-c', RELEASE, 'enssib-unlock', file, owner.token];
}

/** The owner line from the acquire script's stderr when the lock stayed held. */
export function heldBy(stderr: string): string | null {
  const m = /held by: (.*)$/m.exec(stderr);
  return m ? describeOwner(m[1] ?? '') : null;
}
