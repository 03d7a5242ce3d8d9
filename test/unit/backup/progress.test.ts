import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseCopyProgress } from '../../../src/backup/snapshot.js';
import type { RunEvent } from '../../../src/engine/events.js';
import { formatDuration, plainObserver, progressMeter } from '../../../src/ui/progress.js';

const G = 1024 ** 3;
const ev = (done: number, item = 'mail'): RunEvent => ({ type: 'progress', phase: 'copy the snapshot (zstd)', host: 'data1', item, done, total: 10 * G });

describe('progress of a long copy: bytes, rate, ETA', () => {
  it('the rate is the average since the first report; the ETA what is left at that rate', () => {
    let t = 0;
    const meter = progressMeter(() => t);
    expect(meter(ev(0) as Extract<RunEvent, { type: 'progress' }>)).toBe('0B of 10G (0%)');
    t = 10_000;
    expect(meter(ev(G) as Extract<RunEvent, { type: 'progress' }>)).toBe('1G of 10G (10%), 102.4M/s, ETA 1m 30s');
    t = 3_600_000;
    expect(meter(ev(5 * G) as Extract<RunEvent, { type: 'progress' }>)).toBe('5G of 10G (50%), 1.42M/s, ETA 1h 00m');
  });

  it('plain lines (no terminal, cron): one per volume every interval, with the volume, host and phase', () => {
    let t = 0;
    const out = new PassThrough();
    let text = '';
    out.on('data', (b: Buffer) => (text += b.toString()));
    const o = plainObserver(out, { progressEveryMs: 30_000, now: () => t });
    o.event(ev(0));
    o.event(ev(0, 'ldap'));
    t = 10_000;
    o.event(ev(G));
    t = 30_000;
    o.event(ev(3 * G));
    expect(text.split('\n').filter(Boolean)).toEqual([
      '  [mail] data1: copy the snapshot (zstd): 0B of 10G (0%)',
      '  [ldap] data1: copy the snapshot (zstd): 0B of 10G (0%)',
      '  [mail] data1: copy the snapshot (zstd): 3G of 10G (30%), 102.4M/s, ETA 1m 10s',
    ]);
  });

  it('durations for a person', () => {
    expect([0, 999, 59_000, 61_000, 3_599_000, 7_260_000].map(formatDuration)).toEqual(['0 s', '1 s', '59 s', '1m 01s', '59m 59s', '2h 01m']);
  });

  it('the copy\u2019s progress lines: bytes read, anything else ignored (hostile or garbled output)', () => {
    expect(parseCopyProgress('0')).toBe(0);
    expect(parseCopyProgress('268435456')).toBe(268435456);
    for (const bad of ['', '-1', '1e9', '12 34', 'pos: 12', '0x10', '9'.repeat(19), '1.5', '\u0661\u0662']) expect(parseCopyProgress(bad), bad).toBeNull();
  });
});
