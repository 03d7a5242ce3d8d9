import type { HostOutcome, ItemResult, PhaseOutcome, UndoOutcome } from './types.js';

/**
 * What the runner tells the outside while it works. The engine only emits;
 * `ui/progress.ts` renders (listr2 on a terminal, plain lines otherwise), and a
 * test can record them.
 */
export type RunEvent =
  /** A phase starts on these hosts (`kind` says whether it is a phase of the plan, an undo or a cleanup phase). */
  | { type: 'phase-start'; id: string; title: string; hosts: string[]; kind: 'phase' | 'always'; item?: string }
  | { type: 'host-start'; phase: string; host: string; item?: string }
  | { type: 'host-end'; phase: string; outcome: HostOutcome; item?: string }
  | { type: 'phase-end'; outcome: PhaseOutcome }
  /** A command with `progress` reported how far it got: `done` of `total` bytes. */
  | { type: 'progress'; phase: string; host: string; item?: string; done: number; total: number }
  | { type: 'undo-start'; steps: number; item?: string }
  | { type: 'undo-end'; outcome: UndoOutcome }
  /** Per-item work starts: the items, in order (they then run a few at once, their events carry `item`). */
  | { type: 'items-start'; title: string; items: string[] }
  | { type: 'item-start'; item: string }
  | { type: 'item-end'; outcome: ItemResult }
  | { type: 'items-end'; outcomes: ItemResult[] };

export interface RunObserver {
  event(e: RunEvent): void;
  /** Resolves once everything emitted so far is rendered (called at the end of each phase outside per-item work, and at the end of that work). */
  settle?(): Promise<void>;
}
