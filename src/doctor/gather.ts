import { readFileSync } from 'node:fs';
import type { Context } from '../context.js';
import { runnerContext } from '../engine/execute.js';
import { runPlan } from '../engine/runner.js';
import { probedFacts, probePhase, rawProbe, type Probe as EngineProbe } from '../engine/probe.js';
import type { Plan } from '../engine/types.js';
import { couldNotRun, problem, type Finding } from '../engine/findings.js';
import { splitHost } from '../images/registry.js';
import { peerCertificate, TlsUnreachable, type TlsFacts } from '../remote/tls.js';
import type { RunResult } from '../remote/types.js';
import type { Gathered } from './facts.js';
import { judgeCertificate } from './local.js';
import { boundedArgv, type Probe } from './probes.js';

/**
 * The thin part of doctor that talks to the world: runs the probes on every
 * host at once (read-only: a host that fails is reported, the others go on)
 * and reads the registry's certificate. Everything it returns is plain data.
 */

/** Hosts at once: the probes are short reads, so more than the default concurrency. */
const HOSTS_AT_ONCE = 32;
export const DOCTOR_PHASE = 'read every host (read-only)';

/** A host's probes as the engine runs them: by name, each under its time limit, its raw result kept (the checks parse). */
function engineProbes(list: readonly Probe<unknown>[]): Record<string, EngineProbe<RunResult>> {
  return Object.fromEntries(list.map((p) => [p.name, rawProbe(boundedArgv(p.argv))]));
}

/**
 * One read-only phase: on each host, all of its probes in one ssh command
 * (one remote sh runs them in turn). Read-only mode: every host is read even
 * when another failed, and a host that cannot be read is a finding.
 */
export function probePlan(probes: Map<string, Probe<unknown>[]>, onAnswered: (host: string) => void = () => undefined): Plan {
  return {
    title: 'doctor',
    mutating: false,
    readOnly: true,
    phases: [
      probePhase({
        title: DOCTOR_PHASE,
        hosts: [...probes.keys()],
        probes: (h) => engineProbes(probes.get(h) ?? []),
        // Called as soon as the host's probes (the clock last) answered: the time the clock check needs.
        plan: (h) => {
          onAnswered(h);
          return [];
        },
      }),
    ],
  };
}

export async function gatherHosts(ctx: Context, probes: Map<string, Probe<unknown>[]>): Promise<Gathered> {
  const answered = new Map<string, number>();
  const report = await runPlan(
    probePlan(probes, (h) => answered.set(h, Date.now())),
    { mode: 'apply', concurrency: Math.max(ctx.opts.concurrency, HOSTS_AT_ONCE), hosts: ctx.hosts(), ...runnerContext(ctx) },
  );
  const out: Gathered = {};
  for (const o of report.phases[0]?.hosts ?? []) {
    const results = probedFacts(report.state, DOCTOR_PHASE, o.host, engineProbes(probes.get(o.host) ?? []));
    if (!results || o.status === 'failed') {
      out[o.host] = { results: {}, unreachable: { message: o.error?.message.replace(new RegExp(`^${o.host}: `), '') ?? 'not reached', details: o.error?.details ?? [] } };
      continue;
    }
    const at = answered.get(o.host);
    out[o.host] = { results, ...(at !== undefined ? { clockAt: at } : {}) };
  }
  return out;
}

/** The registry's certificate: trusted with the inventory's CA, and its expiry. */
export async function registryFindings(ctx: Context, now: () => Date): Promise<Finding[]> {
  const inv = ctx.inventory();
  const r = inv.data.registry;
  const [host, port] = splitHost(r.host);
  let ca: Buffer | undefined;
  if (r.ca) {
    try {
      ca = readFileSync(inv.path(r.ca));
    } catch (e) {
      return [problem('fail', 'registry', 'registry', `the registry's CA file ${inv.path(r.ca)} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`, 'without it nothing can verify the registry: builds cannot push, workers cannot pull', 'Put the CA certificate there, or correct registry.ca in the inventory.')];
    }
  }
  let tls: TlsFacts;
  try {
    tls = await peerCertificate(host, port, { ...(ca ? { ca } : {}), timeoutMs: 10_000 });
  } catch (e) {
    if (e instanceof TlsUnreachable) return [couldNotRun('registry', 'registry', `${e.message} (is the registry running, and reachable from here?)`)];
    throw e;
  }
  return judgeCertificate('registry', 'registry', r.host, tls, r.ca ? `the inventory's CA (${r.ca})` : "the system's CAs", now());
}
