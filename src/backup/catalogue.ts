import { z } from 'zod';
import type { RunResult } from '../remote/types.js';
import { OperationError, UsageError } from '../errors.js';

/**
 * The backup catalogue: one JSON record per complete backup, next to its image
 * in the destination (`<destination>/<volume>/<id>.json` beside
 * `<id>.img.zst`). A record exists only once its image is complete and synced;
 * an image being written has a hidden temporary name (`.<id>.img.zst.partial`).
 */

export const RECORD_FORMAT = 1;

/** `<volume>.<YYYYMMDD>T<HHMMSS>Z`: the volume name is a DNS-1123 label (no dot), so the id splits at its first dot. */
const ID = /^([a-z]([a-z0-9-]{0,61}[a-z0-9])?)\.(\d{8}T\d{6}Z)$/;

export function backupId(volume: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  return `${volume}.${stamp}`;
}

/** The time a backup id names (the time its plan was made, to the second). */
export function backupTime(id: string): Date {
  const m = /\.(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(id);
  if (!m) throw new UsageError(`backup id ${JSON.stringify(id.slice(0, 80))} is not a backup id`);
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
}

/** Checks a backup id given on the command line (it becomes a file name on the storage server). */
export function validateBackupId(value: unknown): { id: string; volume: string } {
  const v = typeof value === 'string' ? value : '';
  const m = ID.exec(v);
  if (!m) {
    throw new UsageError(`backup id ${JSON.stringify(String(value ?? '')).slice(0, 80)} is not a backup id`, ['A backup id looks like mail.20261203T020000Z (see enssib backup list).']);
  }
  return { id: v, volume: m[1] as string };
}

export interface BackupFiles {
  dir: string;
  image: string;
  record: string;
  /** The image while it is written (hidden, never catalogued). */
  partial: string;
}

export function backupFiles(destination: string, volume: string, id: string): BackupFiles {
  const dir = `${destination.replace(/\/+$/, '')}/${volume}`;
  return { dir, image: `${dir}/${id}.img.zst`, record: `${dir}/${id}.json`, partial: `${dir}/.${id}.img.zst.partial` };
}

const common = {
  format: z.literal(RECORD_FORMAT),
  id: z.string().regex(ID),
  volume: z.string(),
  /** When the copy of the snapshot started (the storage server's clock; with borg, the archive's time), ISO 8601. */
  time: z.iso.datetime(),
  /** The volume's size (bytes read from the snapshot). */
  sizeBytes: z.number().int().nonnegative(),
  compressedBytes: z.number().int().nonnegative(),
  durationMs: z.number().int().nonnegative(),
  /** Copy-on-write area used when the copy ended, in percent. */
  snapshotFillPercent: z.number().nonnegative(),
  tool: z.string(),
};

const imageRecord = z.strictObject({
  ...common,
  method: z.literal('image'),
  /** sha256 of the compressed image file, computed in the stream that wrote it. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The image file's name, in the record's folder. */
  file: z.string().regex(/^[a-z][a-zA-Z0-9.-]*\.img\.zst$/),
});

/** A backup in the borg repository `<destination>/borg`: the archive named by the backup id (borg checks its data itself). */
const borgRecord = z.strictObject({
  ...common,
  method: z.literal('borg'),
  archive: z.string().regex(ID),
  /** What this archive added to the repository when it was made (`borg create --json`'s deduplicated size). */
  deduplicatedBytes: z.number().int().nonnegative(),
});

const record = z.discriminatedUnion('method', [imageRecord, borgRecord]);

export type BackupRecord = z.infer<typeof record>;
export type ImageRecord = z.infer<typeof imageRecord>;
export type BorgRecord = z.infer<typeof borgRecord>;

/** What a backup added to the destination: its image, or the bytes borg stored that no earlier archive had. */
export function addedBytes(r: BackupRecord): number {
  return r.method === 'borg' ? r.deduplicatedBytes : r.compressedBytes;
}

export function recordJson(r: BackupRecord): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

/** Writes the record read on stdin (mode 0600), synced, then renamed: a record is never half written. */
const WRITE_RECORD = ['umask 077', 'cat > "$1.tmp" && sync -- "$1.tmp" && mv -f -- "$1.tmp" "$1"'].join('\n');

export function writeRecordArgv(path: string): string[] {
  return ['sh', '-c', WRITE_RECORD, 'enssib-backup-record', path];
}

/**
 * Reads every record under the destination on the storage server: for each
 * `<destination>/*\/*.json`, its path and content, each followed by a NUL.
 * Exits 0 with nothing when the destination does not exist yet.
 */
const LIST = [
  'd=$1',
  '[ -d "$d" ] || exit 0',
  'for f in "$d"/*/*.json; do',
  '  [ -f "$f" ] || continue',
  '  printf "%s\\0" "$f"; cat -- "$f" || exit 1; printf "\\0"',
  'done',
].join('\n');

export function listRecordsArgv(destination: string): string[] {
  return ['sh', '-c', LIST, 'enssib-backup-list', destination];
}

export class CatalogueError extends OperationError {}

/**
 * The records `listRecordsArgv` printed, oldest first. A record that cannot be
 * read (truncated, edited, not a record) is an error naming the file: the
 * catalogue decides what prune deletes, so nothing is guessed.
 */
export function parseRecords(r: RunResult, where: string): BackupRecord[] {
  if (r.exitCode !== 0) throw new CatalogueError(`${where}: cannot read the backup catalogue (exit code ${r.exitCode}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').pop()}` : ''})`);
  const parts = r.stdout.split('\0');
  if (parts.at(-1) === '') parts.pop();
  if (parts.length % 2 !== 0) throw new CatalogueError(`${where}: the backup catalogue cannot be read (a record holds a NUL byte)`, ['Nothing was changed.']);
  const out: BackupRecord[] = [];
  for (let i = 0; i < parts.length; i += 2) {
    const file = parts[i] as string;
    const text = parts[i + 1] as string;
    out.push(parseRecord(file, text, where));
  }
  return out.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
}

export function parseRecord(file: string, text: string, where: string): BackupRecord {
  const bad = (why: string) =>
    new CatalogueError(`${where}: catalogue record ${file} is corrupted: ${why}`, [
      'Nothing was changed. Look at the file; if its backup is lost, remove the record (and its image) yourself.',
    ]);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`);
  }
  const parsed = record.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw bad(`${issue?.path.join('.') || 'record'}: ${issue?.message ?? 'invalid'}`);
  }
  const rec = parsed.data;
  const base = file.slice(file.lastIndexOf('/') + 1);
  const dir = file.slice(0, file.lastIndexOf('/'));
  if (base !== `${rec.id}.json`) throw bad(`it names backup ${rec.id}, not ${base.replace(/\.json$/, '')}`);
  if (!rec.id.startsWith(`${rec.volume}.`) || !dir.endsWith(`/${rec.volume}`)) throw bad(`volume "${rec.volume}" does not match its id or folder`);
  if (rec.method === 'image' && rec.file !== `${rec.id}.img.zst`) throw bad(`its image is ${rec.file}, expected ${rec.id}.img.zst`);
  if (rec.method === 'borg' && rec.archive !== rec.id) throw bad(`its archive is ${rec.archive}, expected ${rec.id}`);
  return rec;
}
