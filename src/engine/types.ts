import type { FileSpec, RunResult } from '../remote/types.js';
import type { Values } from './probe.js';

/** One thing a phase does on a host, described as data so a dry-run can print it exactly. */
export type Action = CommandAction | FileAction | TaskAction;

export interface CommandAction {
  kind: 'command';
  argv: string[];
  /** Why, in a few words (shown beside the command). */
  label?: string;
  sudo?: boolean;
  timeoutMs?: number;
  input?: string;
  /** Exit codes that count as success (default [0]). */
  okCodes?: number[];
  /**
   * Cancelled at the first interruption instead of awaited (a wait, such as
   * for the storage lock): the host stops it, and nothing it did is left.
   */
  interruptible?: boolean;
  /** Handlers of the phase to run on this host after its actions when this one ran (see Phase.handlers). */
  notify?: string[];
  /** What it prints is a secret (a join token): kept out of the report, the journal and the output. */
  quiet?: boolean;
  /**
   * Runs over a new ssh connection (the shared one is closed first): after an
   * MTU or route change, it proves enssib can still reach the host.
   */
  reconnect?: boolean;
  /**
   * A long command that reports how far it got (a copy of hours): its stdout
   * is streamed (`Host.stream`, never held in memory), each line it prints is
   * read by `parse` as the bytes done so far, and the runner emits a
   * `progress` event (`ui/progress.ts` shows bytes, rate and ETA against
   * `total`). Its `result` sees, as stdout, only the lines `parse` did not
   * take (a final report, such as borg create's JSON; up to 64 KiB).
   */
  progress?: { total: number; parse: (line: string) => number | null };
  /**
   * Reads what the command printed once it succeeded (e.g. a check's report):
   * throwing an EnssibError fails the host. Pure: it parses and judges.
   */
  result?: (r: RunResult) => void;
}

export interface FileAction {
  kind: 'file';
  file: FileSpec;
  label?: string;
  /** Handlers of the phase to run on this host after its actions when the file was written (not when unchanged). */
  notify?: string[];
}

/** Work done by enssib itself (registry, API server, Docker engine) rather than on a host. */
export interface TaskAction {
  kind: 'task';
  label: string;
  /** Exact description lines for a dry run (e.g. the HTTP request it makes). */
  lines: string[];
  /** `signal`: aborted when the commands in flight are cancelled (a second interruption); a long task stops then. */
  run: (signal?: AbortSignal) => Promise<TaskResult | void>;
}

export interface TaskResult {
  changed: boolean;
  message?: string;
}

/** Facts a phase gathered on one host with its read-only checks, in check order. */
export type Facts = RunResult[];

/** What earlier phases learned, for phases whose plan depends on another host's facts. */
export interface RunState {
  facts(phase: string, host: string): Facts | undefined;
  /** Values a phase's plan or task left for later phases (e.g. a generated identity), by typed key. */
  values: Values;
  /** Undo steps already run in this run, oldest first (an undo can refuse when an earlier one failed). */
  undone?: readonly UndoOutcome[];
}

/**
 * What a check found, for a person to act on: read-only commands (doctor,
 * volume list, node list) and a plan's verification report these instead of
 * throwing.
 */
export interface Finding {
  severity: 'error' | 'warning' | 'info';
  host: string;
  /** The check (phase id) that found it. */
  check: string;
  /** What was found, in one line. */
  found: string;
  /** Why it matters. */
  why: string;
  /** How to fix it: commands or steps. */
  fix: string[];
}

/** Local work (tasks) runs under this pseudo host name. */
export const LOCAL = 'local';

export interface Phase {
  /** Stable name for state lookups and reports (default: the title). */
  id?: string;
  title: string;
  /** Inventory host names, or [LOCAL] for a phase of tasks. */
  hosts: string[];
  /** Read-only commands run on each host before planning (shown, not run, by a client dry run). */
  checks?: (host: string) => string[][];
  /**
   * Time allowed for all of a host's checks together (default: the inventory's
   * ssh.commandTimeout): for long reads such as the checksum of a backup image.
   */
  checksTimeoutMs?: number;
  /**
   * The actions for one host. `facts` is null in a client dry run (nothing contacted):
   * the plan then lists everything it may have to do. Throw an EnssibError to refuse.
   * Return [] when the host is already as wanted (the default for a phase without plan).
   */
  plan?: (host: string, facts: Facts | null, state: RunState) => Action[];
  /**
   * Records what later phases need from this host's facts (`state.values`), or
   * throws an EnssibError to refuse; runs before `plan`, which stays pure
   * (also in a client dry run, with null facts).
   */
  decide?: (host: string, facts: Facts | null, state: RunState) => void;
  /**
   * Judges the host from its facts (apply and server dry run): findings, not a
   * throw. A finding of severity "error" fails the host.
   */
  verify?: (host: string, facts: Facts, state: RunState) => Finding[];
  /**
   * How to take back what `plan` did on a host, when a later phase fails or the
   * run is interrupted. `facts` are the results of `undoChecks`, read on the
   * host just before (null without undoChecks): the undo decides from what is
   * there now, not from what the run believes it did (a command that timed out
   * may or may not have done its work). Throwing is reported as a failed undo.
   */
  undo?: (host: string, state: RunState, facts: Facts | null) => Action[];
  /** Read-only commands run on the host right before its undo is planned. */
  undoChecks?: (host: string) => string[][];
  /**
   * Also undo on the hosts that failed in this phase (they may have done part
   * of their actions); the undo actions must then tolerate what was not done.
   */
  undoFailed?: boolean;
  /** Keep going with the other hosts and later phases when a host fails here (partial failure). */
  continueOnError?: boolean;
  /**
   * Handlers by name: run once on a host after its actions in this phase, when
   * an action that names them changed something there ("restart multipathd if
   * its configuration file was written"), in the order of this record.
   */
  handlers?: Record<string, (host: string) => Action[]>;
  /** Override the global concurrency limit for this phase. */
  concurrency?: number;
  /**
   * Later phases do not depend on what this phase changes (e.g. taking a lock):
   * in a server dry run they are still planned from facts after it.
   */
  independent?: boolean;
}

export interface Plan {
  title: string;
  phases: Phase[];
  /**
   * Phases run after the others and their undo, whatever happened — success,
   * failure or interruption — e.g. releasing a lock or removing a snapshot.
   * Their outcomes are appended to the report's phases.
   */
  always?: Phase[];
  /**
   * Hosts whose first command comes in a later phase: the runner opens their
   * ssh connections in the background from the start (it runs `true` there),
   * so that the connection set-up overlaps the earlier phases. Not in a client dry run.
   */
  prefetch?: string[];
  /** Whether a real run changes something (journaled). */
  mutating: boolean;
  /**
   * Read-only mode (doctor, volume list, node list): every phase runs on every
   * host even when a host failed before, nothing stops the run, and each
   * failure is also reported as a finding.
   */
  readOnly?: boolean;
  /**
   * Work over items (volumes), run after `phases` and before `always`: each
   * item is a small plan of its own, with its own failure, undo and `always`
   * cleanup. An item that fails is undone and cleaned up without stopping the
   * others (the run ends in partial failure, exit 3); an interruption stops
   * new items from starting, and every item that started is undone and
   * cleaned up. Not run when the plan's phases stopped.
   */
  items?: PerItem;
}

/** A section of work over items, a few at once. */
export interface PerItem {
  /** What the section does, e.g. "back up each volume". */
  title: string;
  items: ItemPlan[];
  /** Items in progress at once (default 1); the hosts of one item's phase still run under the run's concurrency. */
  concurrency?: number;
}

/**
 * One item's work. Its phases see the plan's facts and values (its own come
 * first); its `always` phases run once the item has started, whatever happened
 * to it or to the other items.
 */
export interface ItemPlan {
  /** The item's name (unique in the section), e.g. the volume. */
  name: string;
  phases: Phase[];
  always?: Phase[];
}

export type ItemStatus = 'done' | 'unchanged' | 'failed' | 'skipped' | 'interrupted' | 'planned' | 'would-change';

export interface ItemResult {
  item: string;
  /** `skipped`: never started (the plan's phases stopped, or the run was interrupted before its turn). */
  status: ItemStatus;
  /** The item's phase that failed or was interrupted. */
  stoppedAt?: string;
  /** Why it failed (the first failing host's error). */
  error?: ErrorReport;
  durationMs: number;
}

/**
 * `after-apply`: a server dry run could not plan the host, because an earlier
 * phase would change what this one reads ("known after apply").
 */
export type HostStatus = 'done' | 'unchanged' | 'failed' | 'skipped' | 'would-change' | 'planned' | 'after-apply';

export interface ErrorReport {
  message: string;
  details: string[];
  /** The remote command that failed, as sent. */
  command?: string;
  /** That command's own exit code. */
  remoteExitCode?: number;
  /** enssib's exit code for this error (1 failed, 2 usage, 130 interrupted, ...). */
  exitCode?: number;
}

export interface HostOutcome {
  host: string;
  status: HostStatus;
  /** Checks listed (client dry-run) or run. */
  checks: string[];
  /** Action lines, as a dry run prints them or as run. */
  actions: string[];
  error?: ErrorReport;
  /** What the phase's verification found on the host. */
  findings?: Finding[];
  /** Some of the host's actions ran before it failed (its undo then runs even without undoFailed). */
  partial?: boolean;
  note?: string;
  /** What the commands printed (first 4 KiB), for read-only plans such as doctor. */
  output?: string;
  durationMs: number;
}

export interface PhaseOutcome {
  id: string;
  title: string;
  /** The item this phase ran for (per-item work). */
  item?: string;
  hosts: HostOutcome[];
}

export interface UndoOutcome {
  phase: string;
  host: string;
  /** The item whose phase this undoes (per-item work). */
  item?: string;
  ok: boolean;
  /** The undo's actions (planned, or run). */
  actions: string[];
  /** When the undo failed: what the phase had done on the host, which may still be there. */
  left?: string[];
  error?: ErrorReport;
}

export type RunMode = 'apply' | 'client' | 'server';

export interface RunReport {
  plan: string;
  mode: RunMode;
  /** Copied from the plan: a read-only plan's summary shows what its commands printed. */
  mutating?: boolean;
  /** The plan's phases, then each item's phases in item order (with `item` set), then the `always` phases. */
  phases: PhaseOutcome[];
  undo: UndoOutcome[];
  /** Per-item work: one outcome per item, in item order. */
  items?: ItemResult[];
  /** Per-item work: each item's own state (what its phases read and decided), by item name. */
  itemStates?: ReadonlyMap<string, RunState>;
  /** 0 ok, 1 failed, 3 partial, 130 interrupted. */
  exitCode: number;
  /** The run was interrupted (Ctrl-C, SIGTERM, SIGHUP): phases after `stoppedAt` did not run. */
  interrupted?: boolean;
  startedAt: string;
  durationMs: number;
  /** Phase that stopped the run, if any. */
  stoppedAt?: string;
  /** Every finding of the run, phase by phase (and, in read-only mode, every host that failed). */
  findings: Finding[];
  state: RunState;
}
