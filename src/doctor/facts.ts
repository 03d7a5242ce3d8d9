import { couldNotRun, problem, type Finding } from '../engine/findings.js';
import type { RunResult } from '../remote/types.js';
import { notTimedOut, ProbeError, ProbeTimeout, type Probe } from './probes.js';

/**
 * What the probes brought back from each host, as plain data (so that the
 * judgement is tested with captured outputs), and the accessors checks use.
 */

export interface HostRun {
  /** Results by probe name (absent when the host was not reached). */
  results: Record<string, RunResult>;
  /** Why ssh could not reach the host, when it could not. */
  unreachable?: { message: string; details: string[] };
  /** Local time (ms since the epoch) when the clock probe's answer arrived. */
  clockAt?: number;
}

export type Gathered = Record<string, HostRun>;

/** The host was not reached: its checks could not run. */
export class Unreachable extends Error {}

/** The parsed fact of a probe on a host; throws Unreachable or ProbeError. */
export function fact<T>(g: Gathered, host: string, p: Probe<T>): T {
  const run = g[host];
  if (!run) throw new Unreachable(`${host} was not checked`);
  if (run.unreachable) throw new Unreachable(`${host} is unreachable over ssh`);
  const r = run.results[p.name];
  if (!r) throw new ProbeError(`no result for ${p.name} on ${host}`);
  return p.parse(notTimedOut(p, r));
}

/**
 * Runs a check's judgement for one host: a host not reached gives "could not
 * run", a probe that failed gives a failure naming the command.
 */
export function judgeHost(check: string, host: string, fn: () => Finding[]): Finding[] {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Unreachable) return [couldNotRun(check, host, e.message)];
    if (e instanceof ProbeTimeout) {
      return [
        problem(
          'fail',
          check,
          host,
          e.message,
          `a command that hangs here hangs enssib's own commands on ${host} too (a stuck iscsid or multipathd, a dead storage path, an NFS server gone)`,
          `On ${host}, see what waits: ps -eo pid,stat,wchan:30,args | awk '$2 ~ /D/'; then the service it talks to (systemctl status iscsid multipathd).`,
        ),
      ];
    }
    if (e instanceof ProbeError) {
      return [problem('fail', check, host, e.message, `doctor reads this to judge the ${check} check; a command that fails here fails for enssib too`, `Run the command by hand on ${host} to see the whole error.`)];
    }
    throw e;
  }
}
