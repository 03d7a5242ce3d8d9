import type { RunResult } from '../remote/types.js';
import type { Action, Facts, Phase, RunState } from './types.js';

/**
 * A read-only command and how to read its result: a typed fact. A phase names
 * its probes (`{ lvs: lvsProbe(vg), … }`) and its plan reads `facts.lvs`, not
 * the third result of a list. The parser throws an EnssibError when the output
 * makes no sense (the host's phase then fails with that message).
 */
export interface Probe<T> {
  argv: string[];
  parse: (r: RunResult) => T;
}

export function probe<T>(argv: string[], parse: (r: RunResult) => T): Probe<T> {
  return { argv, parse };
}

/** A probe whose fact is the command's raw result (exit code, stdout, stderr). */
export function rawProbe(argv: string[]): Probe<RunResult> {
  return { argv, parse: (r) => r };
}

/** Named probes; a set built with conditional spreads has optional names. */
export type ProbeSet = { [name: string]: Probe<unknown> | undefined };
export type FactsOf<P extends ProbeSet> = { [K in keyof P]: NonNullable<P[K]> extends Probe<infer T> ? T : never };

/** The probe set's facts from the results of its commands (run in the order of `checks`). */
export function readProbes<P extends ProbeSet>(probes: P, results: Facts): FactsOf<P> {
  const out: Record<string, unknown> = {};
  Object.entries(probes)
    .filter((e): e is [string, Probe<unknown>] => e[1] !== undefined)
    .forEach(([name, p], i) => {
      const r = results[i];
      if (!r) throw new Error(`internal: no result for probe "${name}"`);
      out[name] = p.parse(r);
    });
  return out as FactsOf<P>;
}

/**
 * A phase that reads named, typed probes on each host before planning, and,
 * with `undoProbes`, named probes read again on the host right before its
 * undo is planned (what is there now decides the undo).
 */
export interface ProbePhase<P extends ProbeSet, U extends ProbeSet = Record<never, never>> extends Omit<Phase, 'checks' | 'plan' | 'decide' | 'undo' | 'undoChecks'> {
  probes: (host: string) => P;
  decide?: (host: string, facts: FactsOf<P> | null, state: RunState) => void;
  /** `facts` is null in a client dry run (nothing contacted). */
  plan?: (host: string, facts: FactsOf<P> | null, state: RunState) => Action[];
  undoProbes?: (host: string) => U;
  /** `facts`: the undo probes' facts (null without undo probes). */
  undo?: (host: string, state: RunState, facts: FactsOf<U> | null) => Action[];
}

/** Turns a phase of typed probes into a plan phase (its probes run, batched, as the phase's checks; its undo probes as its undo checks). */
export function probePhase<P extends ProbeSet, U extends ProbeSet = Record<never, never>>(def: ProbePhase<P, U>): Phase {
  const { probes, plan, decide, undoProbes, undo, ...rest } = def;
  const facts = (h: string, f: Facts | null) => (f ? readProbes(probes(h), f) : null);
  const argvOf = (set: ProbeSet) => Object.values(set).flatMap((p) => (p ? [p.argv] : []));
  return {
    ...rest,
    checks: (h) => argvOf(probes(h)),
    ...(decide ? { decide: (h: string, f: Facts | null, s: RunState) => decide(h, facts(h, f), s) } : {}),
    ...(plan ? { plan: (h: string, f: Facts | null, s: RunState) => plan(h, facts(h, f), s) } : {}),
    ...(undoProbes ? { undoChecks: (h: string) => argvOf(undoProbes(h)) } : {}),
    ...(undo ? { undo: (h: string, s: RunState, f: Facts | null) => undo(h, s, f && undoProbes ? readProbes(undoProbes(h), f) : null) } : {}),
  };
}

/** The typed facts a probe phase read on a host earlier in the run (null in a client dry run, or when it did not run there). */
export function probedFacts<P extends ProbeSet>(state: RunState, phase: string, host: string, probes: P): FactsOf<P> | null {
  const f = state.facts(phase, host);
  return f ? readProbes(probes, f) : null;
}

/** A typed name for a value one phase leaves for later ones (`state.values`). */
export interface ValueKey<T> {
  readonly name: string;
  /** Carries T (never set). */
  readonly __type?: (t: T) => T;
}

export function valueKey<T>(name: string): ValueKey<T> {
  return { name };
}

/**
 * Values phases leave for later phases, by typed key: no casts at the reader.
 * An item's values (per-item work) see the plan's through `parent`; what an
 * item sets stays its own.
 */
export class Values {
  private readonly m = new Map<string, unknown>();
  constructor(private readonly parent?: Values) {}
  get<T>(k: ValueKey<T>): T | undefined {
    return this.m.has(k.name) ? (this.m.get(k.name) as T) : this.parent?.get(k);
  }
  set<T>(k: ValueKey<T>, v: T): void {
    this.m.set(k.name, v);
  }
  has<T>(k: ValueKey<T>): boolean {
    return this.m.has(k.name) || (this.parent?.has(k) ?? false);
  }
}
