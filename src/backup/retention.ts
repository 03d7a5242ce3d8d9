/**
 * Which backups retention keeps, as a pure function: per volume, newest first,
 * the newest backup of each of the last `daily` days that have one, of each of
 * the last `weekly` ISO weeks, of each of the last `monthly` months (UTC). A
 * backup kept by an earlier rule does not count toward a later one, but its
 * period is used up (the rules of `borg prune`).
 */

export interface Retention {
  daily?: number | undefined;
  weekly?: number | undefined;
  monthly?: number | undefined;
}

export interface Dated {
  id: string;
  volume: string;
  time: string;
}

export type KeepReason = 'daily' | 'weekly' | 'monthly';

export interface RetentionDecision<T extends Dated> {
  keep: { backup: T; reason: KeepReason; rank: number }[];
  remove: T[];
}

const day = (d: Date) => d.toISOString().slice(0, 10);
const month = (d: Date) => d.toISOString().slice(0, 7);

/** ISO 8601 week "2026-W49" (weeks start on Monday; week 1 holds the year's first Thursday). */
export function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const dow = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - dow);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

const RULES: [KeepReason, (d: Date) => string][] = [
  ['daily', day],
  ['weekly', isoWeek],
  ['monthly', month],
];

export function retentionIsEmpty(r: Retention): boolean {
  return !(r.daily || r.weekly || r.monthly);
}

export function applyRetention<T extends Dated>(backups: readonly T[], r: Retention): RetentionDecision<T> {
  const byVolume = new Map<string, T[]>();
  for (const b of backups) byVolume.set(b.volume, [...(byVolume.get(b.volume) ?? []), b]);
  const keep: RetentionDecision<T>['keep'] = [];
  const remove: T[] = [];
  for (const list of byVolume.values()) {
    const newest = [...list].sort((a, b) => b.time.localeCompare(a.time) || b.id.localeCompare(a.id));
    const kept = new Map<string, { reason: KeepReason; rank: number }>();
    for (const [reason, period] of RULES) {
      const n = r[reason] ?? 0;
      let count = 0;
      let last: string | null = null;
      for (const b of newest) {
        if (count >= n) break;
        const p = period(new Date(b.time));
        if (p === last) continue;
        last = p;
        if (kept.has(b.id)) continue;
        count++;
        kept.set(b.id, { reason, rank: count });
      }
    }
    for (const b of newest) {
      const k = kept.get(b.id);
      if (k) keep.push({ backup: b, ...k });
      else remove.push(b);
    }
  }
  return { keep, remove };
}
