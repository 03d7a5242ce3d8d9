import { ConfigError } from '../errors.js';
import { destinationText, parseAbsoluteFile, parseBackupDestination } from '../inventory/destination.js';
import type { Inventory } from '../inventory/inventory.js';
import { quote } from '../remote/quote.js';
import { parseSize } from '../validate.js';
import type { BorgRepo } from './borg.js';
import type { Retention } from './retention.js';

/** The inventory's `backup` section, checked: where backups go, how large a snapshot is, what prune keeps. */
export interface BackupSite {
  /** The backups' folder: on the metadata storage server, or on `remote`. */
  destination: string;
  /** The backup host the folder is on, reached over ssh from the metadata storage server; null: the folder is on that server. */
  remote: BackupRemote | null;
  /** Copy-on-write size of a snapshot: a share of the volume's size, or a fixed size. */
  snapshotSize: { percent: number } | { bytes: number };
  retention: Retention;
  /** How long a volume may run on one path (the other server's export offline) before the summary warns (ms). */
  maxSinglePathMs: number;
  /** `backup.method: borg`: the repository (`<destination>/borg`) the snapshots go into; absent: the `image` method. */
  borg?: BorgRepo;
}

export const DEFAULT_SNAPSHOT_PERCENT = 20;
export const DEFAULT_MAX_SINGLE_PATH = '2h';

export function backupSite(inv: Inventory): BackupSite {
  const b = inv.data.backup;
  if (!b) {
    throw new ConfigError(`${inv.file} has no backup section`, ['Add one, e.g.:', 'backup: { destination: /srv/backup, retention: { daily: 7, weekly: 4, monthly: 6 } }']);
  }
  const dest = parseBackupDestination(b.destination);
  // The schema refused a bad one already; an inventory made in code is checked here too.
  if ('error' in dest) throw new ConfigError(`backup.destination ${JSON.stringify(b.destination.slice(0, 120))} in ${inv.file}: ${dest.error}`);
  const remote = dest.kind === 'ssh' ? { user: dest.user, host: dest.host, port: dest.port } : null;
  const site: BackupSite = { destination: dest.path, remote, snapshotSize: snapshotSize(b.snapshotSize, inv.file), retention: b.retention, maxSinglePathMs: durationMs(b.maxSinglePath ?? DEFAULT_MAX_SINGLE_PATH, inv.file) };
  if (b.method !== 'borg') return site;
  const file = b.borg ? parseAbsoluteFile(b.borg.passphraseFile) : { error: 'missing: backup.method borg needs borg: { passphraseFile: /root/… }' };
  if (typeof file !== 'string') throw new ConfigError(`backup.borg.passphraseFile in ${inv.file}: ${file.error}`, ['A root-only file (mode 0600) on the metadata storage server holding the borg repository\u2019s passphrase; see docs/backup.md.']);
  return { ...site, borg: { path: `${dest.path}/borg`, remote, passphraseFile: file } };
}

/** The borg repository of the catalogue's borg backups: the inventory must still name it (method borg). `what`: "verify", "restore"… */
export function borgRepoOf(bsite: Pick<BackupSite, 'borg'>, what: string): BorgRepo {
  if (!bsite.borg) throw new ConfigError(`the catalogue holds borg backups, but the inventory's backup.method is not borg: cannot ${what} them`, ['Set backup.method: borg and backup.borg.passphraseFile (the repository\u2019s passphrase file) in the inventory.']);
  return bsite.borg;
}

export interface BackupRemote {
  user: string | null;
  host: string;
  port: number | null;
}

/**
 * ssh from the metadata storage server to the backup host, as root there (its
 * key, its known_hosts). BatchMode: no password or passphrase prompt;
 * StrictHostKeyChecking=yes: a backup host whose key is not known, or changed,
 * is refused — a new key is never accepted on the way.
 */
export function sshToBackupHost(r: BackupRemote, opts: { stdin: boolean }): string[] {
  return [
    'ssh',
    ...(opts.stdin ? [] : ['-n']),
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'ConnectTimeout=20',
    '-o', 'ServerAliveInterval=15',
    '-o', 'ServerAliveCountMax=4',
    ...(r.port ? ['-p', String(r.port)] : []),
    '--',
    r.user ? `${r.user}@${r.host}` : r.host,
  ];
}

/**
 * The argv the metadata host runs so that `argv` runs where the backups are:
 * itself, or over ssh on the backup host (one quoted line, see quote.ts).
 * `stdin`: the command reads what is piped into it (the copy's stream).
 */
export function atDestination(bsite: Pick<BackupSite, 'remote'>, argv: readonly string[], opts: { stdin: boolean } = { stdin: false }): string[] {
  return bsite.remote ? ['sh', '-c', TO_BACKUP_HOST, 'enssib-backup-host', ...sshToBackupHost(bsite.remote, opts).slice(1), quote(argv)] : [...argv];
}

/**
 * The exit code of a command on the backup host whose ssh failed (ssh's 255).
 * Passed on as 255, the storage server's own ssh session would take it for its
 * own connection failing.
 */
export const BACKUP_HOST_UNREACHABLE = 254;
const TO_BACKUP_HOST = `ssh "$@" || { r=$?; [ "$r" -ne 255 ] || r=${BACKUP_HOST_UNREACHABLE}; exit "$r"; }`;

/** Where the backups are, for messages: "data1:/srv/backup", or "ssh://backup@backup1/srv/enssib (from data1)". */
export function destinationLabel(meta: string, bsite: Pick<BackupSite, 'remote' | 'destination'>): string {
  const r = bsite.remote;
  return r ? `${destinationText({ kind: 'ssh', ...r, path: bsite.destination })} (from ${meta})` : `${meta}:${bsite.destination}`;
}

/** `backup.maxSinglePath`: a duration of seconds, minutes or hours (90s, 45m, 2h), at most a week. */
function durationMs(v: string, file: string): number {
  const m = /^(\d{1,6})([smh])$/.exec(v);
  const ms = m ? Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'] : NaN;
  if (!(ms > 0 && ms <= 7 * 24 * 3_600_000)) throw new ConfigError(`backup.maxSinglePath ${JSON.stringify(v.slice(0, 40))} in ${file}: expected a duration such as 2h, 90m or 45s (more than 0, at most 168h)`);
  return ms;
}

function snapshotSize(v: string | undefined, file: string): BackupSite['snapshotSize'] {
  if (v === undefined) return { percent: DEFAULT_SNAPSHOT_PERCENT };
  const pct = /^(\d{1,3})%$/.exec(v);
  if (pct) {
    const n = Number(pct[1]);
    if (n < 1 || n > 100) throw new ConfigError(`backup.snapshotSize ${v} in ${file}: expected 1% to 100% of the volume`);
    return { percent: n };
  }
  try {
    return { bytes: parseSize(v, 'backup.snapshotSize') };
  } catch (e) {
    throw new ConfigError(`${(e as Error).message} in ${file}`, ['Give a share of the volume, such as 20%, or a size, such as 10G.']);
  }
}

/** The copy-on-write size for a volume of `originBytes`, in bytes (before rounding to extents). */
export function cowBytes(site: Pick<BackupSite, 'snapshotSize'>, originBytes: number): number {
  return 'bytes' in site.snapshotSize ? site.snapshotSize.bytes : Math.ceil((originBytes * site.snapshotSize.percent) / 100);
}
