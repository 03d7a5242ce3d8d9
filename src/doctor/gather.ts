import { readFileSync } from 'node:fs';
import type { Context } from '../context.js';
import { runnerContext } from '../engine/execute.js';
import { runPlan } from '../engine/runner.js';
import type { Plan } from '../engine/types.js';
import { couldNotRun, problem, type Finding } from '../engine/findings.js';
import { splitHost } from '../images/registry.js';
import { peerCertificate, TlsUnreachable, type TlsFacts } from '../remote/tls.js';
import type { Gathered } from './facts.js';
import { judgeCertificate } from './local.js';
import type { Probe } from './probes.js';

/**
 * The thin part of doctor that talks to the world: runs the probes on every
 * host at once (read-only: a host that fails is reported, the others go on)
 * and reads the registry's certificate. Everything it returns is plain data.
 */

/** Hosts at once: the probes are short reads, so more than the default concurrency. */
const HOSTS_AT_ONCE = 32;
export const DOCTOR_PHASE = 'read every host (read-only)';

export function probePlan(probes: Map<string, Probe<unknown>[]>, onAnswered: (host: string) => void = () => undefined): Plan {
  return {
    title: 'doctor',
    mutating: false,
    phases: [
      {
        title: DOCTOR_PHASE,
        hosts: [...probes.keys()],
        continueOnError: true,
        checks: (h) => (probes.get(h) ?? []).map((p) => p.argv),
        // Called as soon as the host's last probe (the clock) answered: the time the clock check needs.
        plan: (h) => {
          onAnswered(h);
          return [];
        },
      },
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
    const facts = report.state.facts(DOCTOR_PHASE, o.host);
    const list = probes.get(o.host) ?? [];
    if (!facts || o.status === 'failed') {
      out[o.host] = { results: {}, unreachable: { message: o.error?.message.replace(new RegExp(`^${o.host}: `), '') ?? 'not reached', details: o.error?.details ?? [] } };
      continue;
    }
    const results: Gathered[string]['results'] = {};
    list.forEach((p, i) => {
      const r = facts[i];
      if (r) results[p.name] = r;
    });
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
