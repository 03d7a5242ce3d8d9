import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../../src/engine/events.js';
import { journalEntry } from '../../../src/engine/journal.js';
import { probePhase, probe, valueKey } from '../../../src/engine/probe.js';
import { runPlan, type RunnerOptions } from '../../../src/engine/runner.js';
import type { ItemPlan, Plan } from '../../../src/engine/types.js';
import { ExitCode } from '../../../src/errors.js';
import { progressObserver } from '../../../src/ui/progress.js';
import { fakePool } from '../../support/fake-hosts.js';

/** Per-item work (`Plan.items`): each item with its own failure, undo and `always` cleanup (fake hosts). */
type Pool = ReturnType<typeof fakePool>;
const opts = (pool: Pool, more: Partial<RunnerOptions> = {}): RunnerOptions => ({ mode: 'apply', concurrency: 4, hosts: pool, ...more });

/** A backup-like plan: lock; per volume snapshot → copy, always remove the snapshot; unlock. */
function backupLike(volumes: string[], concurrency = 1): Plan {
  const item = (v: string): ItemPlan => ({
    name: v,
    phases: [
      {
        id: 'snapshot',
        title: 'create the snapshot',
        hosts: ['data1'],
        plan: () => [{ kind: 'command', argv: ['lvcreate', '--snapshot', v] }],
        undo: () => [{ kind: 'command', argv: ['undo-snapshot', v] }],
      },
      { id: 'copy', title: 'copy', hosts: ['data1'], plan: () => [{ kind: 'command', argv: ['copy', v] }] },
    ],
    always: [{ id: 'remove', title: 'remove the snapshot', hosts: ['data1'], plan: () => [{ kind: 'command', argv: ['lvremove', `${v}-snap`] }] }],
  });
  return {
    title: 'backup',
    mutating: true,
    phases: [{ title: 'lock', hosts: ['data1'], independent: true, plan: () => [{ kind: 'command', argv: ['lock'] }] }],
    items: { title: 'back up each volume', items: volumes.map(item), concurrency },
    always: [{ title: 'unlock', hosts: ['data1'], plan: () => [{ kind: 'command', argv: ['unlock'] }] }],
  };
}

const calls = (pool: Pool) => pool.host('data1').calls.map((c) => c.join(' '));

describe('per-item work', () => {
  it('one item failing is undone and cleaned up; the others carry on; partial failure, exit 3', async () => {
    const pool = fakePool((_h, argv) => (argv[0] === 'copy' && argv[1] === 'b' ? { exitCode: 1, stderr: 'disk full\n' } : undefined));
    const r = await runPlan(backupLike(['a', 'b', 'c']), opts(pool));
    expect(r.exitCode).toBe(ExitCode.partial);
    expect(r.stoppedAt).toBeUndefined();
    expect(r.items?.map((i) => `${i.item}:${i.status}`)).toEqual(['a:done', 'b:failed', 'c:done']);
    expect(r.items?.[1]).toMatchObject({ stoppedAt: 'copy', error: { remoteExitCode: 1, details: ['disk full'] } });
    expect(calls(pool)).toEqual([
      'lock',
      'lvcreate --snapshot a',
      'copy a',
      'lvremove a-snap',
      'lvcreate --snapshot b',
      'copy b',
      'undo-snapshot b',
      'lvremove b-snap',
      'lvcreate --snapshot c',
      'copy c',
      'lvremove c-snap',
      'unlock',
    ]);
    expect(r.undo).toEqual([expect.objectContaining({ item: 'b', phase: 'create the snapshot', host: 'data1', ok: true })]);
    // The report's phases: the plan's, each item's in item order (named), then the plan's cleanup.
    expect(r.phases.map((p) => (p.item ? `${p.item}/${p.id}` : p.id))).toEqual(['lock', 'a/snapshot', 'a/copy', 'a/remove', 'b/snapshot', 'b/copy', 'b/remove', 'c/snapshot', 'c/copy', 'c/remove', 'unlock']);
    const j = journalEntry(r);
    expect(j.exitCode).toBe(3);
    expect(j.items).toEqual([{ item: 'a', status: 'done' }, expect.objectContaining({ item: 'b', status: 'failed' }), { item: 'c', status: 'done' }]);
    expect(j.undo).toEqual([{ phase: 'create the snapshot', item: 'b', host: 'data1', ok: true }]);
    expect(j.phases.find((p) => p.item === 'b' && p.title === 'copy')?.hosts[0]?.status).toBe('failed');
  });

  it('an item whose cleanup fails is a failed item, and the next items still run', async () => {
    const pool = fakePool((_h, argv) => (argv[0] === 'lvremove' && argv[1] === 'a-snap' ? new Error('connection lost') : undefined));
    const r = await runPlan(backupLike(['a', 'b']), opts(pool));
    expect(r.items?.map((i) => i.status)).toEqual(['failed', 'done']);
    expect(r.exitCode).toBe(ExitCode.partial);
    expect(calls(pool)).toContain('lvremove b-snap');
  });

  it('every item failing is a failure (exit 1), each cleaned up', async () => {
    const pool = fakePool((_h, argv) => (argv[0] === 'copy' ? { exitCode: 1 } : undefined));
    const r = await runPlan(backupLike(['a', 'b'], 2), opts(pool));
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(calls(pool).filter((c) => c.startsWith('lvremove') || c.startsWith('undo'))).toEqual(expect.arrayContaining(['undo-snapshot a', 'undo-snapshot b', 'lvremove a-snap', 'lvremove b-snap']));
    expect(calls(pool).at(-1)).toBe('unlock');
  });

  it('a plan phase that stops the run: no item starts, they are reported skipped', async () => {
    const pool = fakePool((_h, argv) => (argv[0] === 'lock' ? { exitCode: 1 } : undefined));
    const r = await runPlan(backupLike(['a', 'b']), opts(pool));
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.items?.map((i) => i.status)).toEqual(['skipped', 'skipped']);
    expect(calls(pool)).toEqual(['lock', 'unlock']);
  });

  it('an interruption: items in flight are undone and cleaned up, no new item starts, exit 130', async () => {
    const ac = new AbortController();
    const pool = fakePool(async (_h, argv) => {
      if (argv[0] === 'copy' && argv[1] === 'b') {
        ac.abort();
        await new Promise((r) => setTimeout(r, 10));
      }
      return undefined;
    });
    const r = await runPlan(backupLike(['a', 'b', 'c', 'd'], 2), opts(pool, { signal: ac.signal }));
    expect(r.exitCode).toBe(ExitCode.interrupted);
    expect(r.interrupted).toBe(true);
    expect(r.stoppedAt).toBe('back up each volume');
    const byItem = Object.fromEntries((r.items ?? []).map((i) => [i.item, i.status]));
    // a and b were in flight together: b's copy finished, a was stopped before its copy or had finished it.
    expect(byItem.c).toBe('skipped');
    expect(byItem.d).toBe('skipped');
    for (const v of ['a', 'b']) expect(calls(pool)).toContain(`lvremove ${v}-snap`);
    expect(calls(pool)).not.toContain('lvcreate --snapshot c');
    expect(calls(pool)).not.toContain('lvremove c-snap');
    expect(calls(pool).at(-1)).toBe('unlock');
  });

  it('items read the plan\'s values and facts; their own facts and values stay their own', async () => {
    const token = valueKey<string>('token');
    const seen = valueKey<string>('seen');
    const got: string[] = [];
    const pool = fakePool((_h, argv) => (argv[0] === 'lvs' ? { stdout: `size-of-${argv[1] ?? ''}` } : argv[0] === 'lock' ? { stdout: 'T1' } : undefined));
    const item = (v: string): ItemPlan => ({
      name: v,
      phases: [
        probePhase({
          id: 'read',
          title: 'read',
          hosts: ['data1'],
          probes: () => ({ size: probe(['lvs', v], (r) => r.stdout) }),
          decide: (_h, f, s) => {
            if (s.values.has(seen)) throw new Error('a value of another item leaked');
            s.values.set(seen, f?.size ?? '');
          },
          plan: (_h, f, s) => {
            got.push(`${v}:${f?.size ?? ''}:${s.values.get(token) ?? ''}:${s.facts('lock', 'data1')?.[0]?.stdout ?? ''}`);
            return [];
          },
        }),
      ],
    });
    const plan: Plan = {
      title: 't',
      mutating: true,
      phases: [
        {
          title: 'lock',
          hosts: ['data1'],
          checks: () => [['lock']],
          decide: (_h, f, s) => s.values.set(token, f?.[0]?.stdout ?? ''),
        },
      ],
      items: { title: 'each', items: [item('a'), item('b')], concurrency: 2 },
    };
    const r = await runPlan(plan, opts(pool));
    expect(r.exitCode).toBe(ExitCode.ok);
    expect(got.sort()).toEqual(['a:size-of-a:T1:T1', 'b:size-of-b:T1:T1']);
    expect(r.state.values.has(seen)).toBe(false);
  });

  it('a client dry run lists every item\'s phases and cleanup, contacting nothing', async () => {
    const pool = fakePool();
    const r = await runPlan(backupLike(['a', 'b']), opts(pool, { mode: 'client' }));
    expect(pool.host('data1').calls).toEqual([]);
    expect(r.items?.map((i) => i.status)).toEqual(['planned', 'planned']);
    expect(r.phases.filter((p) => p.item === 'b').map((p) => p.hosts[0]?.actions[0])).toEqual(['lvcreate --snapshot b', 'copy b', 'lvremove b-snap']);
  });

  it('a server dry run: after an item phase that would change something, its later phases are known after apply', async () => {
    const plan = backupLike(['a']);
    const snap = plan.items?.items[0]?.phases[0];
    if (snap) snap.checks = () => [['lvs']];
    const copy = plan.items?.items[0]?.phases[1];
    if (copy) copy.checks = () => [['test', '-e', 'snap']];
    const pool = fakePool();
    const r = await runPlan(plan, opts(pool, { mode: 'server' }));
    expect(r.phases.filter((p) => p.item === 'a').map((p) => p.hosts[0]?.status)).toEqual(['would-change', 'after-apply', 'would-change']);
    expect(r.items?.[0]?.status).toBe('would-change');
  });

  it('emits item events and phase events that carry the item; plain progress names the item', async () => {
    const events: RunEvent[] = [];
    const pool = fakePool((_h, argv) => (argv[0] === 'copy' && argv[1] === 'b' ? { exitCode: 1, stderr: 'disk full\n' } : undefined));
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (d: Buffer) => (text += d.toString()));
    const plain = progressObserver('simple', stream);
    await runPlan(backupLike(['a', 'b']), opts(pool, { observer: { event: (e) => (events.push(e), plain?.event(e)) } }));
    const kinds = events.map((e) => e.type);
    expect(kinds.filter((k) => k.startsWith('item'))).toEqual(['items-start', 'item-start', 'item-end', 'item-start', 'item-end', 'items-end']);
    expect(events.filter((e) => e.type === 'phase-start' && e.item === 'b').map((e) => (e.type === 'phase-start' ? e.title : ''))).toEqual(['create the snapshot', 'copy', 'remove the snapshot']);
    expect(text).toContain('→ back up each volume (2 items)');
    expect(text).toContain('✖ [b] copy — 1 of 1 host failed');
    expect(text).toContain('  ↩ data1: undone — [b] create the snapshot');
    expect(text).toMatch(/✖ b: FAILED( \(\d+\.\d s\))? — copy: data1: command failed/);
    expect(text).toContain('✖ back up each volume — 1 of 2 items failed');
  });
});
