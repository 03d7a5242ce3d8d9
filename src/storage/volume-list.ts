import { probedFacts, probePhase, type FactsOf } from '../engine/probe.js';
import type { Plan, RunReport } from '../engine/types.js';
import { formatBytes } from '../validate.js';
import { exportPresent, exportTrace } from './exports.js';
import { VOLUME_TAG, identityFromTags, type Identity } from './identity.js';
import { targetPaths, workerProbes } from './initiator.js';
import type { VolumeUser } from './kube.js';
import { fsFromTags, type LvInfo } from './lvm.js';
import { lioVolumeState } from './targets/lio.js';
import { SCST_DRIVER, sections } from './targets/scst.js';
import { PHASE_READ, iqnOf, storageFacts, storageProbes, type StorageFacts, type VolumeSite } from './volume.js';

/**
 * `enssib volume list`: read-only. The LVs enssib made (tag `enssib`), where
 * each is exported (with its own identity), the paths each worker has to it
 * right now, and — when the API answers — the PersistentVolumes and pods that
 * use it.
 */

export const PHASE_LIST_WORKERS = 'read sessions and multipath maps on the workers';

/** What `volume list` reads on each storage server (no DRBD state: a list does not need it). */
const serverProbes = (site: VolumeSite) => storageProbes(site, { drbd: false });

/** What it reads on each worker: its iSCSI sessions and multipath maps. */
const listWorkerProbes = { sessions: workerProbes.sessions, maps: workerProbes.maps };

/**
 * Read-only: every probe runs on every host even when one fails, and a host
 * that could not be read (unreachable, or output that makes no sense) is a
 * finding. Reading the facts in `decide` parses them there, so that a failure
 * is the host's (its rows are then marked "?").
 */
export function listPlan(site: VolumeSite, workerConcurrency?: number): Plan {
  const phases: Plan['phases'] = [
    probePhase({ title: PHASE_READ, hosts: site.servers.map((s) => s.name), probes: () => serverProbes(site), decide: (host, f) => void (f && storageFacts(site, host, null, f)) }),
  ];
  if (site.workers.length > 0) {
    phases.push(
      probePhase({
        title: PHASE_LIST_WORKERS,
        hosts: site.workers,
        ...(workerConcurrency ? { concurrency: workerConcurrency } : {}),
        probes: () => listWorkerProbes,
        decide: () => undefined,
      }),
    );
  }
  return { title: 'volume list', mutating: false, readOnly: true, phases, prefetch: site.workers };
}

export interface VolumeRow {
  name: string;
  size: string | null;
  sizeBytes: number | null;
  fsType: string | null;
  identity: Identity | null;
  iqn: string;
  /** Per storage server: "yes" (as wanted), "no", "other identity", "?" (unreachable). */
  exports: Record<string, 'yes' | 'no' | 'partial' | 'other identity' | '?'>;
  /** Per worker: active paths / sessions, or "?" when the worker did not answer. */
  paths: Record<string, { active: number; total: number } | '?'>;
  usedBy: VolumeUser[] | null;
  problems: string[];
}

export function listRows(site: VolumeSite, report: RunReport): { rows: VolumeRow[]; unreachable: string[] } {
  const facts = new Map<string, StorageFacts | null>();
  const unreachable: string[] = [];
  for (const s of site.servers) {
    const f = readable(report, PHASE_READ, s.name, () => probedFacts(report.state, PHASE_READ, s.name, serverProbes(site)));
    const parsed = f ? readable(report, PHASE_READ, s.name, () => storageFacts(site, s.name, null, f)) : null;
    facts.set(s.name, parsed);
    if (!parsed) unreachable.push(s.name);
  }
  const lvsByName = new Map<string, LvInfo>();
  const order = [site.meta, ...site.servers.map((s) => s.name).filter((n) => n !== site.meta)];
  for (const host of order) for (const lv of facts.get(host)?.lvs ?? []) if (lv.tags.includes(VOLUME_TAG) && !lvsByName.has(lv.name)) lvsByName.set(lv.name, lv);
  // Exports without an LV (left by a failed delete) are listed too.
  const prefix = `${site.iqnPrefix}:`;
  const orphans = new Set<string>();
  for (const f of facts.values()) {
    if (!f) continue;
    const iqns = f.lio
      ? f.lio.tpgs.map((t) => t.iqn)
      : f.scst
        ? [...sections(f.scst.conf.items, 'TARGET_DRIVER', SCST_DRIVER), ...sections(f.scst.running.items, 'TARGET_DRIVER', SCST_DRIVER)].flatMap((d) => sections(d.items, 'TARGET').map((t) => t.args[0] ?? ''))
        : [];
    for (const i of iqns) if (i.startsWith(prefix) && !lvsByName.has(i.slice(prefix.length))) orphans.add(i.slice(prefix.length));
  }
  const workers = new Map<string, FactsOf<typeof listWorkerProbes> | null>();
  for (const w of site.workers) workers.set(w, readable(report, PHASE_LIST_WORKERS, w, () => probedFacts(report.state, PHASE_LIST_WORKERS, w, listWorkerProbes)));
  const names = [...[...lvsByName.keys()].sort(), ...[...orphans].sort()];
  const rows = names.map((name): VolumeRow => {
    const lv = lvsByName.get(name) ?? null;
    const iqn = iqnOf(site, name);
    const problems: string[] = [];
    let identity: Identity | null = null;
    try {
      identity = lv ? identityFromTags(lv.tags) : null;
    } catch (e) {
      problems.push((e as Error).message);
    }
    if (!lv) {
      const untagged = facts.get(site.meta)?.lvs.find((l) => l.name === name);
      problems.push(
        untagged
          ? `LV ${site.vg}/${name} was not created by enssib (no identity tag): listed for its export only`
          : 'exported but has no LV (left by a failed delete: run enssib volume delete again)',
      );
    }
    const exports: VolumeRow['exports'] = {};
    for (const s of site.servers) {
      const f = facts.get(s.name);
      if (!f) exports[s.name] = '?';
      else if (identity && exportPresent(site, s, f, { name, identity })) exports[s.name] = 'yes';
      else if (exportTrace(site, f, name).length === 0) exports[s.name] = 'no';
      else if (identity && f.lio && lioVolumeState(f.lio, name, iqn).backstore && lioVolumeState(f.lio, name, iqn).backstore?.serial.replace(/-/g, '') !== identity) exports[s.name] = 'other identity';
      else exports[s.name] = 'partial';
    }
    const paths: VolumeRow['paths'] = {};
    for (const w of site.workers) {
      const ws = workers.get(w);
      if (!ws) paths[w] = '?';
      else {
        const tp = targetPaths(iqn, ws.sessions, ws.maps);
        paths[w] = { active: tp.active, total: Math.max(tp.total, tp.sessions.length) };
        if (tp.maps.length > 1) problems.push(`${w}: ${tp.maps.length} multipath maps for one volume (different identities)`);
      }
    }
    return {
      name,
      size: lv ? formatBytes(lv.sizeBytes) : null,
      sizeBytes: lv?.sizeBytes ?? null,
      fsType: lv ? fsFromTags(lv.tags) : null,
      identity,
      iqn,
      exports,
      paths,
      usedBy: null,
      problems,
    };
  });
  return { rows, unreachable: [...unreachable, ...site.workers.filter((w) => !workers.get(w))] };
}

/** A host's facts when its phase succeeded there and they make sense; null otherwise (its rows then say "?"). */
function readable<T>(report: RunReport, phase: string, host: string, read: () => T | null): T | null {
  const o = report.phases.find((p) => p.title === phase)?.hosts.find((h) => h.host === host);
  if (o?.status === 'failed') return null;
  try {
    return read();
  } catch {
    return null;
  }
}

export function listLines(site: VolumeSite, rows: VolumeRow[], table: (h: string[], r: string[][]) => string[], apiNote: string | null): string[] {
  if (rows.length === 0) return ['No volumes.'];
  const headers = ['NAME', 'SIZE', 'FS', ...site.servers.map((s) => s.name.toUpperCase()), 'PATHS', 'USED BY'];
  const body = rows.map((r) => [
    r.name,
    r.size ?? '-',
    r.fsType ?? '-',
    ...site.servers.map((s) => r.exports[s.name] ?? '?'),
    site.workers
      .map((w) => {
        const p = r.paths[w];
        if (p === '?') return `${w} ?`;
        if (!p || p.total === 0) return null;
        return `${w} ${p.active}/${site.servers.length} active`;
      })
      .filter(Boolean)
      .join(', ') || '-',
    r.usedBy === null ? '?' : r.usedBy.map((u) => (u.kind === 'Pod' ? `pod ${u.namespace}/${u.name}` : `pv ${u.name}`)).join(', ') || '-',
  ]);
  const lines = table(headers, body);
  for (const r of rows) for (const p of r.problems) lines.push(`  ${r.name}: ${p}`);
  if (apiNote) lines.push('', apiNote);
  return lines;
}
