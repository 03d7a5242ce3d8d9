/**
 * A finding: what a read-only check found on one host (or on the cluster),
 * why it matters and what to do. `doctor` reports them; a verify step of a
 * mutating plan can report the same type.
 *
 * Severities: `ok`, `warn` (works, but a hazard is near), `fail` (broken, or
 * one of the site's known corruption hazards), and `unknown` — the check
 * could not run (host unreachable, no registry or API server configured or
 * reachable): distinct from a failure, with the reason in `found`.
 */
export type Severity = 'ok' | 'warn' | 'fail' | 'unknown';

export const SEVERITIES: readonly Severity[] = ['fail', 'warn', 'unknown', 'ok'];

export interface Finding {
  severity: Severity;
  /** An inventory host name, or a cluster-wide subject (`registry`, `kubernetes`, `cluster`). */
  host: string;
  /** The check that produced it (a `doctor --only` name). */
  check: string;
  /** What was found, in one sentence. */
  found: string;
  /** Why it matters (empty for `ok`). */
  why: string;
  /** What to do (empty for `ok`). */
  fix: string;
}

export function ok(check: string, host: string, found: string): Finding {
  return { severity: 'ok', host, check, found, why: '', fix: '' };
}

export function problem(severity: 'warn' | 'fail', check: string, host: string, found: string, why: string, fix: string): Finding {
  return { severity, host, check, found, why, fix };
}

export function couldNotRun(check: string, host: string, reason: string): Finding {
  return { severity: 'unknown', host, check, found: `could not run: ${reason}`, why: '', fix: '' };
}

export function counts(findings: readonly Finding[]): Record<Severity, number> {
  const c: Record<Severity, number> = { ok: 0, warn: 0, fail: 0, unknown: 0 };
  for (const f of findings) c[f.severity]++;
  return c;
}

/** Most severe first, then in the order given (stable). */
export function bySeverity(findings: readonly Finding[]): Finding[] {
  return [...findings].sort((a, b) => SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity));
}
