import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../../src/engine/events.js';
import type { HostOutcome, ItemResult, PhaseOutcome } from '../../../src/engine/types.js';
import { listrObserver } from '../../../src/ui/progress.js';

/**
 * The terminal renderer (listr2) over the runner's events, on a stand-in
 * terminal stream: the last frame it leaves must tell each phase's true
 * status — a phase where a host failed is not ✔.
 */
function terminal(): { stream: NodeJS.WriteStream; text: () => string } {
  const s = new PassThrough() as unknown as NodeJS.WriteStream & PassThrough;
  Object.assign(s, { isTTY: true, columns: 120, rows: 40 });
  let out = '';
  s.on('data', (d: Buffer) => (out += d.toString()));
  return { stream: s, text: () => out };
}

/** The lines the terminal shows at the end: the last frame, escape sequences removed. */
function lastFrame(raw: string): string[] {
  // eslint-disable-next-line no-control-regex
  const frames = raw.split(/\u001b\[G/);
  // eslint-disable-next-line no-control-regex
  return (frames.at(-1) ?? '').replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
}

const host = (name: string, status: HostOutcome['status']): HostOutcome => ({
  host: name,
  status,
  checks: [],
  actions: [],
  durationMs: 0,
  ...(status === 'failed' ? { error: { message: `${name}: cannot reach ${name} over ssh`, details: [] } } : {}),
});

async function render(events: RunEvent[]): Promise<string[]> {
  const t = terminal();
  const o = listrObserver(t.stream);
  for (const e of events) {
    o.event(e);
    await new Promise((r) => setTimeout(r, 5));
  }
  await o.settle?.();
  return lastFrame(t.text());
}

function phase(title: string, hosts: HostOutcome[]): RunEvent[] {
  const outcome: PhaseOutcome = { id: title, title, hosts };
  return [
    { type: 'phase-start', id: title, title, hosts: hosts.map((h) => h.host), kind: 'phase' },
    ...hosts.map((h): RunEvent => ({ type: 'host-end', phase: title, outcome: h })),
    { type: 'phase-end', outcome },
  ];
}

describe('terminal progress (listr2) tells the true status', () => {
  it('a phase where one host of two failed (continueOnError, read-only) is marked failed, not ✔', async () => {
    const lines = await render(phase('reach every host over ssh', [host('data1', 'done'), host('data2', 'failed')]));
    expect(lines[0]).toBe('✖ reach every host over ssh — 1 of 2 hosts failed');
    expect(lines).toContain('  ✔ data1: done');
    expect(lines).toContain('  ✖ data2: FAILED — cannot reach data2 over ssh');
    expect(lines.join('\n')).not.toMatch(/✔ reach every host/);
  });

  it('a phase where every host failed is marked failed', async () => {
    const lines = await render(phase('reach every host over ssh', [host('data1', 'failed'), host('data2', 'failed')]));
    expect(lines[0]).toBe('✖ reach every host over ssh — 2 of 2 hosts failed');
  });

  it('a phase where every host succeeded is ✔', async () => {
    const lines = await render(phase('read', [host('data1', 'done'), host('data2', 'unchanged')]));
    expect(lines[0]).toBe('✔ read');
  });

  it('per-item work: one line per item with its outcome; the section is marked failed when an item failed', async () => {
    const a: ItemResult = { item: 'mail', status: 'done', durationMs: 0 };
    const b: ItemResult = { item: 'git', status: 'failed', stoppedAt: 'copy', error: { message: 'data1: disk full', details: [] }, durationMs: 0 };
    const lines = await render([
      { type: 'items-start', title: 'back up each volume', items: ['mail', 'git'] },
      { type: 'item-start', item: 'mail' },
      { type: 'phase-start', id: 'copy', title: 'copy', hosts: ['data1'], kind: 'phase', item: 'mail' },
      { type: 'item-start', item: 'git' },
      { type: 'item-end', outcome: a },
      { type: 'item-end', outcome: b },
      { type: 'items-end', outcomes: [a, b] },
    ]);
    expect(lines[0]).toBe('✖ back up each volume — 1 of 2 items failed');
    expect(lines).toContain('  ✔ mail: done');
    expect(lines).toContain('  ✖ git: FAILED — copy: data1: disk full');
  });
});
