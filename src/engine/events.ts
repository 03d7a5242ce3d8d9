import type { HostOutcome, PhaseOutcome, UndoOutcome } from './types.js';

/**
 * What the runner tells the outside while it works. The engine only emits;
 * `ui/progress.ts` renders (listr2 on a terminal, plain lines otherwise), and a
 * test can record them.
 */
export type RunEvent =
  /** A phase starts on these hosts (`kind` says whether it is a phase of the plan, an undo or a cleanup phase). */
  | { type: 'phase-start'; id: string; title: string; hosts: string[]; kind: 'phase' | 'always' }
  | { type: 'host-start'; phase: string; host: string }
  | { type: 'host-end'; phase: string; outcome: HostOutcome }
  | { type: 'phase-end'; outcome: PhaseOutcome }
  | { type: 'undo-start'; steps: number }
  | { type: 'undo-end'; outcome: UndoOutcome };

export interface RunObserver {
  event(e: RunEvent): void;
  /** Resolves once everything emitted so far is rendered (called at the end of each phase). */
  settle?(): Promise<void>;
}
