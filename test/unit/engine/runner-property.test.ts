import { describe, expect, it } from 'vitest';
import { runPlan } from '../../../src/engine/runner.js';
import type { ItemPlan, Phase, Plan, PhaseOutcome, RunReport } from '../../../src/engine/types.js';
import { fakePool, type Answer } from '../../support/fake-hosts.js';

/**
 * The runner's promises over random plans, failures and interruptions (a
 * small seeded generator, so that a failure is reproducible from its seed):
 *  - every `always` phase ran on every one of its hosts;
 *  - when the run stopped, every host where a phase with an undo was done
 *    was undone or its failed undo reported; when it did not stop, nothing
 *    was undone;
 *  - per-item work: every item that started had its own `always` phases run;
 *    an item that stopped (failure or interruption) had every host where one
 *    of its phases with an undo was done undone or its failed undo reported;
 *    an item that did not stop was not undone; no item started after the
 *    plan's phases stopped; a failed item makes the run fail or partly fail;
 *  - the exit code says interrupted exactly when the run was interrupted;
 *  - the runner never throws.
 */

/** mulberry32: a tiny deterministic PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTS = ['data1', 'data2', 'node01', 'node02'];

interface Case {
  plan: Plan;
  /** Commands that fail (exit 1), throw (connection lost), hang until cancelled, or trigger an interruption. */
  fail: Set<string>;
  lost: Set<string>;
  interruptAt: string | null;
  cancelToo: boolean;
}

function randomCase(seed: number): Case {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const some = () => HOSTS.filter(() => r() < 0.5).concat(r() < 0.5 ? [] : [pick(HOSTS)]).filter((h, i, a) => a.indexOf(h) === i);
  const cleanupPhases = (prefix: string): Phase[] =>
    Array.from({ length: Math.floor(r() * 3) }, (_, i) => ({
      title: `${prefix}always${i}`,
      hosts: some().length ? [pick(HOSTS)] : [pick(HOSTS), pick(HOSTS)].filter((h, j, a) => a.indexOf(h) === j),
      plan: (h: string) => [{ kind: 'command' as const, argv: ['cleanup', `${prefix}always${i}@${h}`] }],
    }));
  const randomPhases = (prefix: string, max: number): Phase[] => {
    const phases: Phase[] = [];
    const nPhases = 1 + Math.floor(r() * max);
    for (let p = 0; p < nPhases; p++) {
      const hosts = some();
      if (hosts.length === 0) hosts.push(pick(HOSTS));
      const nActions = Math.floor(r() * 3);
      const title = `${prefix}p${p}`;
      const undoMode = pick(['none', 'ok', 'ok', 'throws', 'fails'] as const);
      for (const h of hosts) for (let a = 0; a < nActions; a++) cmds.push(`${title}.${a}@${h}`);
      phases.push({
        title,
        hosts,
        ...(r() < 0.3 ? { continueOnError: true } : {}),
        ...(r() < 0.3 ? { undoFailed: true } : {}),
        ...(r() < 0.3 ? { checks: () => [['check', title]] } : {}),
        plan: (h) => Array.from({ length: nActions }, (_, a) => ({ kind: 'command' as const, argv: ['do', `${title}.${a}@${h}`] })),
        ...(undoMode === 'none'
          ? {}
          : {
              undo: (h: string) => {
                if (undoMode === 'throws') throw new Error(`undo plan of ${title} on ${h}`);
                return [{ kind: 'command' as const, argv: ['undo', `${title}@${h}`, undoMode] }];
              },
            }),
      });
    }
    return phases;
  };
  const cmds: string[] = [];
  const phases = randomPhases('', 5);
  // Per-item work in half the cases: a few items, each a small plan with its own cleanup.
  const items: ItemPlan[] =
    r() < 0.5 ? Array.from({ length: 1 + Math.floor(r() * 4) }, (_, i) => ({ name: `v${i}`, phases: randomPhases(`v${i}.`, 3), always: cleanupPhases(`v${i}.`) })) : [];
  const always = cleanupPhases('');
  const fail = new Set(cmds.filter(() => r() < 0.1));
  const lost = new Set(cmds.filter(() => r() < 0.05));
  const interruptAt = cmds.length > 0 && r() < 0.4 ? pick(cmds) : null;
  const plan: Plan = {
    title: `seed ${seed}`,
    mutating: true,
    phases,
    always,
    ...(items.length > 0 ? { items: { title: 'each item', items, concurrency: 1 + Math.floor(r() * 3) } } : {}),
  };
  return { plan, fail, lost, interruptAt, cancelToo: r() < 0.5 };
}

describe('runner properties over random plans, failures and interruptions', () => {
  it('holds for 400 seeded cases', async () => {
    for (let seed = 1; seed <= 400; seed++) {
      const c = randomCase(seed);
      const first = new AbortController();
      const second = new AbortController();
      const pool = fakePool((_h, argv): Answer | Promise<Answer> => {
        const id = argv[1] ?? '';
        if (argv[0] === 'undo' && argv[2] === 'fails') return { exitCode: 5, stderr: 'undo failed\n' };
        if (argv[0] !== 'do') return undefined;
        if (id === c.interruptAt) {
          first.abort();
          if (c.cancelToo) {
            setTimeout(() => second.abort(), 1);
            return new Promise<Answer>(() => undefined); // in flight until cancelled
          }
        }
        if (c.lost.has(id)) return new Error(`connection lost during ${id}`);
        if (c.fail.has(id)) return { exitCode: 1 };
        return undefined;
      });
      const report = await runPlan(c.plan, { mode: 'apply', concurrency: 2, hosts: pool, signal: first.signal, cancel: second.signal });
      const where = `seed ${seed}`;

      for (const a of c.plan.always ?? []) {
        for (const h of a.hosts) expect(pool.host(h).calls, where).toContainEqual(['cleanup', `${a.title}@${h}`]);
      }
      expect(report.exitCode === 130, where).toBe(report.interrupted === true);
      if (report.interrupted) expect(first.signal.aborted, where).toBe(true);

      checkUndo(report, c.plan.phases, report.phases.filter((p) => p.item === undefined && c.plan.phases.some((q) => q.title === p.title)), report.stoppedAt !== undefined, where);

      for (const item of c.plan.items?.items ?? []) {
        const outcome = report.items?.find((i) => i.item === item.name);
        const w = `${where}: item ${item.name}`;
        expect(outcome, w).toBeDefined();
        if (!outcome) continue;
        const own = report.phases.filter((p) => p.item === item.name);
        if (outcome.status === 'skipped') {
          expect(own, w).toEqual([]);
          expect(report.stoppedAt !== undefined || first.signal.aborted, w).toBe(true);
          continue;
        }
        for (const a of item.always ?? []) {
          for (const h of a.hosts) expect(pool.host(h).calls, w).toContainEqual(['cleanup', `${a.title}@${h}`]);
        }
        const stopped = outcome.stoppedAt !== undefined;
        expect(stopped, w).toBe(outcome.status === 'interrupted' || own.some((p) => p.title === outcome.stoppedAt && p.hosts.some((h) => h.status === 'failed')) || outcome.stoppedAt === 'internal error');
        checkUndo(report, item.phases, own.filter((p) => item.phases.some((q) => q.title === p.title)), stopped, w, item.name);
        if (outcome.status === 'failed' && !report.interrupted) expect(report.exitCode, w).not.toBe(0);
      }
    }
  }, 120_000);
});

/**
 * Undo of one sequence (the plan's phases, or one item's): when it stopped,
 * every host where a phase with an undo was done (or failed having done part
 * of it) was undone once, or its failed undo reported with what was left;
 * otherwise nothing of it was undone.
 */
function checkUndo(report: RunReport, defs: Phase[], ran: PhaseOutcome[], stopped: boolean, where: string, item?: string): void {
  for (const p of ran) {
    const phase = defs.find((q) => q.title === p.title) as Phase;
    for (const o of p.hosts) {
      const undone = report.undo.filter((u) => u.phase === p.title && u.host === o.host && u.item === item);
      if (!stopped) {
        expect(undone, where).toEqual([]);
        continue;
      }
      if (phase.undo && (o.status === 'done' || (o.status === 'failed' && (phase.undoFailed || o.partial)))) {
        expect(undone, `${where}: ${p.title}@${o.host} (${o.status})`).toHaveLength(1);
        const u = undone[0];
        if (u && !u.ok) expect(u.error?.message, where).toBeTruthy();
        if (u && !u.ok) expect(u.left, where).toEqual(o.actions);
      }
    }
  }
}
