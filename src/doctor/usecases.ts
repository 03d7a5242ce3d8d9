import { readFileSync } from 'node:fs';
import type { Invocation } from '../usecase.js';
import type { Context } from '../context.js';
import { execute } from '../engine/execute.js';
import { bySeverity, counts, type Finding } from '../engine/findings.js';
import { ExitCode, UsageError } from '../errors.js';
import type { Inventory } from '../inventory/inventory.js';
import { volumeSite } from '../storage/volume.js';
import { HOST_CHECKS, type DoctorSite, type HostCheck } from './checks.js';
import { gatherHosts, probePlan, registryFindings } from './gather.js';
import { clockProbe, systemProbe, type Probe } from './probes.js';

/**
 * `enssib doctor`: every hazard the site learned, checked on every host at
 * once, read-only, in one table (or one JSON document). Exit code 1 when a
 * check failed; 0 when every check is OK or WARN or could not run (no
 * registry or API server reachable from here is not a failure of the cluster).
 */

/** Checks made from this machine rather than on the hosts. */
export const LOCAL_CHECKS = [
  { id: 'registry', summary: "the registry answers over TLS, trusted with the inventory's CA; its certificate expires in more than 30 days" },
  { id: 'kubernetes', summary: 'the API server answers, its certificate expires in more than 30 days, every inventory worker is a Ready node, no node unknown to the inventory' },
] as const;

export const CHECK_IDS: readonly string[] = [...HOST_CHECKS.map((c) => c.id), ...LOCAL_CHECKS.map((c) => c.id)];

/** The inventory's registry CA for the workers' check: its PEM text, why it cannot be read, or null (none named). */
function registryCa(inv: Inventory): DoctorSite['registry']['ca'] {
  const ca = inv.data.registry.ca;
  if (!ca) return null;
  try {
    return { pem: readFileSync(inv.path(ca), 'utf8').trim() };
  } catch (e) {
    return { error: `${inv.path(ca)}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}` };
  }
}

export function doctorSite(inv: Inventory): DoctorSite {
  return {
    hosts: inv.hosts,
    storage: volumeSite(inv),
    clusterMtu: inv.data.networks.cluster.mtu,
    podsCidr: inv.data.networks.pods,
    gateway: inv.data.nodes?.gateway ?? inv.data.nfs?.vip ?? null,
    nfsProtocol: inv.data.nfs?.protocol ?? 'tcp',
    registry: { host: inv.data.registry.host, ca: registryCa(inv) },
  };
}

/** A comma-separated and/or repeated list option: every item one of `known`. */
export function parseList(flag: string, raw: unknown, known: readonly string[], what: string): string[] | null {
  if (raw === undefined) return null;
  const values = (Array.isArray(raw) ? raw : [raw]).map(String);
  const items = values.flatMap((v) => v.split(',').map((i) => i.trim()));
  const hint = [`Known: ${known.join(', ')}`];
  if (items.every((i) => i === '')) throw new UsageError(`${flag} is empty`, hint);
  const gap = values.find((v) => v.split(',').some((i) => i.trim() === ''));
  if (gap !== undefined) throw new UsageError(`${flag} ${JSON.stringify(gap)} has an empty ${what} name`, hint);
  const unknown = items.filter((i) => !known.includes(i));
  if (unknown.length > 0) throw new UsageError(`${flag}: no ${what} ${unknown.map((u) => JSON.stringify(u)).join(', ')}`, hint);
  return [...new Set(items)];
}

export function parseWatch(raw: unknown): number | null {
  if (raw === undefined) return null;
  const v = String(raw);
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 86_400) throw new UsageError(`--watch ${JSON.stringify(v)}: expected a number of seconds from 1 to 86400`);
  return Number(v);
}

export interface Selection {
  hosts: string[];
  checks: string[];
}

function inScope(site: DoctorSite, c: HostCheck, host: string): boolean {
  if (c.on === 'all') return true;
  const roles = site.hosts.find((h) => h.name === host)?.roles ?? [];
  return roles.includes(c.on === 'storage' ? 'storage' : 'worker');
}

/** The probes each host runs, deduplicated: the system probe first (it opens the connection), the clock last. */
export function hostProbes(site: DoctorSite, sel: Selection): Map<string, Probe<unknown>[]> {
  const checks = HOST_CHECKS.filter((c) => sel.checks.includes(c.id));
  const out = new Map<string, Probe<unknown>[]>();
  if (checks.length === 0) return out;
  for (const h of sel.hosts) {
    const list: Probe<unknown>[] = [systemProbe];
    for (const c of checks.filter((x) => inScope(site, x, h))) {
      for (const p of c.probes(site)) if (p !== clockProbe && !list.some((x) => x.name === p.name)) list.push(p);
    }
    if (checks.some((c) => c.id === 'clock')) list.push(clockProbe);
    out.set(h, list);
  }
  return out;
}

/** One round of every selected check. */
export async function runDoctor(ctx: Context, site: DoctorSite, sel: Selection, now: () => Date = () => new Date()): Promise<Finding[]> {
  const probes = hostProbes(site, sel);
  const local: Promise<Finding[]>[] = [];
  if (sel.checks.includes('registry')) local.push(registryFindings(ctx, now));
  if (sel.checks.includes('kubernetes')) local.push(import('./kube.js').then((m) => m.kubernetesFindings(ctx, now)));
  const [gathered, ...localFindings] = await Promise.all([probes.size > 0 ? gatherHosts(ctx, probes) : Promise.resolve({}), ...local]);
  const findings: Finding[] = [];
  for (const c of HOST_CHECKS.filter((x) => sel.checks.includes(x.id))) {
    const hosts = sel.hosts.filter((h) => inScope(site, c, h));
    if (hosts.length > 0) findings.push(...c.judge(site, gathered, hosts));
  }
  return [...findings, ...localFindings.flat()];
}

const LABEL: Record<Finding['severity'], string> = { ok: 'OK', warn: 'WARN', fail: 'FAIL', unknown: 'UNKNOWN' };

export function findingsTable(findings: Finding[], table: (h: string[], r: string[][]) => string[]): string[] {
  const rows = bySeverity(findings).map((f) => [LABEL[f.severity], f.host, f.check, f.found, f.why || '-', f.fix || '-']);
  return table(['STATUS', 'HOST', 'CHECK', 'FINDING', 'WHY IT MATTERS', 'FIX'], rows);
}

export function summaryLine(findings: Finding[], ms: number): string {
  const c = counts(findings);
  const parts = [`${c.fail} FAIL`, `${c.warn} WARN`, ...(c.unknown ? [`${c.unknown} could not run`] : []), `${c.ok} OK`];
  return `doctor: ${parts.join(', ')} (${(ms / 1000).toFixed(1)} s)`;
}

export function exitCodeOf(findings: Finding[]): number {
  return findings.some((f) => f.severity === 'fail') ? ExitCode.failed : ExitCode.ok;
}

/** Findings that changed between two rounds of --watch (by check and host), as lines. */
export function changes(before: Finding[], after: Finding[], at: Date): string[] {
  const key = (f: Finding) => `${f.check}\u0000${f.host}`;
  const group = (fs: Finding[]) => {
    const m = new Map<string, Finding[]>();
    for (const f of fs) m.set(key(f), [...(m.get(key(f)) ?? []), f]);
    return m;
  };
  const sig = (fs: Finding[] | undefined) => (fs ?? []).map((f) => `${f.severity} ${f.found}`).join('\n');
  const a = group(before);
  const b = group(after);
  const time = at.toTimeString().slice(0, 8);
  const out: string[] = [];
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    if (sig(a.get(k)) === sig(b.get(k))) continue;
    const now = b.get(k) ?? [];
    const [check, host] = k.split('\u0000') as [string, string];
    if (now.length === 0) out.push(`${time}  GONE     ${host}  ${check}`);
    for (const f of bySeverity(now)) out.push(`${time}  ${LABEL[f.severity].padEnd(7)}  ${host}  ${check}  ${f.found}${f.fix ? `  → ${f.fix}` : ''}`);
  }
  return out;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export async function doctorCommand(ctx: Context, inv: Invocation): Promise<number> {
  const inventory = ctx.inventory();
  const all = inventory.hosts.map((h) => h.name);
  const hosts = parseList('--host', inv.opts.host, all, 'host') ?? all;
  const only = parseList('--only', inv.opts.only, CHECK_IDS, 'check');
  const watch = parseWatch(inv.opts.watch);
  // --host narrows the report to those hosts: the registry and API checks run only when asked for by --only.
  const checks = only ?? CHECK_IDS.filter((c) => inv.opts.host === undefined || !LOCAL_CHECKS.some((l) => l.id === c));
  const site = doctorSite(inventory);
  const sel = { hosts: all.filter((h) => hosts.includes(h)), checks: CHECK_IDS.filter((c) => checks.includes(c)) };

  if (ctx.opts.dryRun === 'client') {
    const report = await execute(ctx, probePlan(hostProbes(site, sel)));
    return report.exitCode;
  }
  let previous: Finding[] | null = null;
  for (;;) {
    const started = Date.now();
    const findings = await runDoctor(ctx, site, sel);
    const ms = Date.now() - started;
    const code = exitCodeOf(findings);
    if (ctx.signal.aborted) return ExitCode.interrupted;
    if (previous === null || ctx.out.format === 'json') {
      const doc = { findings: bySeverity(findings), summary: counts(findings), hosts: sel.hosts, checks: sel.checks, durationMs: ms, exitCode: code };
      if (watch !== null && ctx.out.format === 'json') ctx.out.json({ at: new Date().toISOString(), ...doc });
      else ctx.out.result(() => doc, () => [...findingsTable(findings, ctx.out.table), '', summaryLine(findings, ms)]);
    } else {
      const lines = changes(previous, findings, new Date());
      for (const l of lines) ctx.out.line(l);
      ctx.out.note(`${summaryLine(findings, ms)}${lines.length === 0 ? ' — no change' : ''}`);
    }
    if (watch === null) return code;
    previous = findings;
    await sleep(watch * 1000, ctx.signal);
    if (ctx.signal.aborted) return ExitCode.interrupted;
  }
}
