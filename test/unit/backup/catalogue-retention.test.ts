import { describe, expect, it } from 'vitest';
import { CatalogueError, backupFiles, backupId, parseRecords, recordJson, validateBackupId, type BackupRecord, type ImageRecord } from '../../../src/backup/catalogue.js';
import { applyRetention, isoWeek, retentionIsEmpty } from '../../../src/backup/retention.js';
import { UsageError } from '../../../src/errors.js';

const rec = (volume: string, time: string, over: Partial<ImageRecord> = {}): ImageRecord => {
  const id = backupId(volume, new Date(time));
  return { format: 1, id, volume, method: 'image', time, sizeBytes: 268435456, compressedBytes: 1234, sha256: 'a'.repeat(64), durationMs: 1500, snapshotFillPercent: 0.5, file: `${id}.img.zst`, tool: 'enssib 0.1.0', ...over };
};
/** What listRecordsArgv prints: path NUL content NUL, per record. */
const listing = (records: { path: string; text: string }[]) => ({ exitCode: 0, stdout: records.map((r) => `${r.path}\0${r.text}\0`).join(''), stderr: '', durationMs: 1 });
const at = (r: BackupRecord) => ({ path: `/srv/backup/${r.volume}/${r.id}.json`, text: recordJson(r) });

describe('backup ids', () => {
  it('are the volume and the UTC time, and round-trip through the validator', () => {
    const id = backupId('mail', new Date('2026-12-03T02:00:05.123Z'));
    expect(id).toBe('mail.20261203T020005Z');
    expect(validateBackupId(id)).toEqual({ id, volume: 'mail' });
    expect(backupFiles('/srv/backup/', 'mail', id)).toEqual({
      dir: '/srv/backup/mail',
      image: '/srv/backup/mail/mail.20261203T020005Z.img.zst',
      record: '/srv/backup/mail/mail.20261203T020005Z.json',
      partial: '/srv/backup/mail/.mail.20261203T020005Z.img.zst.partial',
    });
  });
  it('refuses hostile or malformed ids with a usage error', () => {
    for (const bad of ['', 'mail', '../etc.20261203T020005Z', 'mail.20261203T020005Z/../../x', 'Mail.20261203T020005Z', "mail;rm -rf /.20261203T020005Z", 'mail.2026-12-03T02:00Z', 'mail.20261203T020005Z\n', 42, undefined]) {
      expect(() => validateBackupId(bad), String(bad)).toThrow(UsageError);
    }
  });
});

describe('catalogue parsing', () => {
  it('reads records oldest first', () => {
    const a = rec('mail', '2026-12-02T02:00:00.000Z');
    const b = rec('ldap', '2026-12-01T02:00:00.000Z');
    expect(parseRecords(listing([at(a), at(b)]), 'data1:/srv/backup').map((r) => r.id)).toEqual([b.id, a.id]);
    expect(parseRecords(listing([]), 'data1:/srv/backup')).toEqual([]);
  });
  it('a corrupted record is a clear error naming the file', () => {
    const a = rec('mail', '2026-12-02T02:00:00.000Z');
    const cases: [string, RegExp][] = [
      [recordJson(a).slice(0, 40), /catalogue record \/srv\/backup\/mail\/mail\.20261202T020000Z\.json is corrupted: not JSON/],
      [JSON.stringify({ ...a, sha256: 'xyz' }), /is corrupted: sha256/],
      [JSON.stringify({ ...a, format: 2 }), /is corrupted: format/],
      [JSON.stringify({ ...a, extra: 1 }), /is corrupted/],
      [JSON.stringify({ ...a, id: 'mail.20261202T030000Z' }), /names backup mail\.20261202T030000Z/],
      [JSON.stringify({ ...a, volume: 'ldap' }), /does not match its id or folder/],
      [JSON.stringify({ ...a, file: '../../etc.img.zst' }), /is corrupted: file/],
    ];
    for (const [text, msg] of cases) {
      let err: unknown;
      try {
        parseRecords(listing([{ path: `/srv/backup/mail/${a.id}.json`, text }]), 'data1:/srv/backup');
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(CatalogueError);
      expect((err as Error).message).toMatch(msg);
      expect((err as CatalogueError).details.join(' ')).toMatch(/Nothing was changed/);
    }
  });
  it('a record holding a NUL byte, or a failed read, is an error, never an empty catalogue', () => {
    expect(() => parseRecords({ exitCode: 0, stdout: '/srv/backup/mail/x.json\0{"a":\0"b"}\0', stderr: '', durationMs: 1 }, 'd')).toThrow(/NUL/);
    expect(() => parseRecords({ exitCode: 1, stdout: '', stderr: 'cat: Permission denied', durationMs: 1 }, 'data1:/srv/backup')).toThrow(/cannot read the backup catalogue \(exit code 1: cat: Permission denied\)/);
  });
});

describe('retention (pure)', () => {
  it('ISO weeks', () => {
    expect(isoWeek(new Date('2026-12-03T00:00:00Z'))).toBe('2026-W49');
    expect(isoWeek(new Date('2027-01-01T00:00:00Z'))).toBe('2026-W53');
    expect(isoWeek(new Date('2026-01-01T00:00:00Z'))).toBe('2026-W01');
    expect(isoWeek(new Date('2025-12-29T00:00:00Z'))).toBe('2026-W01');
  });

  /** Two backups a day (02:00 and 14:00) of mail from 2026-08-01 to 2026-12-03, and one of ldap on some days. */
  function synthetic(): BackupRecord[] {
    const out: BackupRecord[] = [];
    for (let t = Date.parse('2026-08-01T02:00:00Z'); t <= Date.parse('2026-12-03T14:00:00Z'); t += 12 * 3600_000) out.push(rec('mail', new Date(t).toISOString()));
    for (const d of ['2026-11-30', '2026-12-01', '2026-12-03']) out.push(rec('ldap', `${d}T03:00:00.000Z`));
    return out;
  }

  it('keeps exactly the newest of each of the last 7 days, 4 weeks and 6 months, per volume', () => {
    const all = synthetic();
    const { keep, remove } = applyRetention(all, { daily: 7, weekly: 4, monthly: 6 });
    const mail = keep.filter((k) => k.backup.volume === 'mail').map((k) => `${k.reason} ${k.backup.time.slice(0, 13)}`);
    expect(mail).toEqual([
      'daily 2026-12-03T14',
      'daily 2026-12-02T14',
      'daily 2026-12-01T14',
      'daily 2026-11-30T14',
      'daily 2026-11-29T14',
      'daily 2026-11-28T14',
      'daily 2026-11-27T14',
      // weeks: W48 (Nov 23-29) and W49 are used up by the dailies; then W47, W46, W45, W44
      'weekly 2026-11-22T14',
      'weekly 2026-11-15T14',
      'weekly 2026-11-08T14',
      'weekly 2026-11-01T14',
      // months: December and November used up; October, September, August
      'monthly 2026-10-31T14',
      'monthly 2026-09-30T14',
      'monthly 2026-08-31T14',
    ]);
    expect(keep.filter((k) => k.backup.volume === 'ldap').map((k) => k.backup.time.slice(0, 10))).toEqual(['2026-12-03', '2026-12-01', '2026-11-30']);
    expect(keep.length + remove.length).toBe(all.length);
    expect(new Set([...keep.map((k) => k.backup.id), ...remove.map((r) => r.id)]).size).toBe(all.length);
  });

  it('keeps the newest per day only, and nothing for a zero or missing count', () => {
    const all = synthetic();
    const { keep } = applyRetention(all, { daily: 2 });
    expect(keep.map((k) => k.backup.id)).toEqual(['mail.20261203T140000Z', 'mail.20261202T140000Z', 'ldap.20261203T030000Z', 'ldap.20261201T030000Z']);
    expect(retentionIsEmpty({})).toBe(true);
    expect(retentionIsEmpty({ daily: 0, weekly: 0 })).toBe(true);
    expect(retentionIsEmpty({ monthly: 1 })).toBe(false);
    expect(applyRetention(all, {}).keep).toEqual([]);
  });

  it('is independent of input order', () => {
    const all = synthetic();
    const a = applyRetention(all, { daily: 7, weekly: 4, monthly: 6 });
    const b = applyRetention([...all].reverse(), { daily: 7, weekly: 4, monthly: 6 });
    expect(b.keep.map((k) => k.backup.id).sort()).toEqual(a.keep.map((k) => k.backup.id).sort());
  });
});
