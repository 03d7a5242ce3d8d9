import { probe, probedFacts, probePhase, valueKey, type FactsOf } from '../engine/probe.js';
import type { Action, Phase, Plan, RunReport, RunState } from '../engine/types.js';
import type { RunResult } from '../remote/types.js';
import { OperationError, UsageError } from '../errors.js';
import { formatBytes } from '../validate.js';
import { identityFromTags, type Identity } from './identity.js';
import { rescanArgv, resizeMapArgv, targetPaths, workerProbes, type MultipathMap, type Mount } from './initiator.js';
import type { LockOwner } from './lock.js';
import { fsFromTags, lvPath, lvRefreshArgv, lvextendArgv, roundToExtents, type Filesystem } from './lvm.js';
import { resyncArgv } from './targets/scst.js';
import { command, iqnOf, lockPhase, readPhase, releasePhase, type VolumeSite } from './volume.js';
import { volumeLockPhase, volumeUnlockPhase } from './volume-lock.js';

/**
 * `enssib volume resize <name> <size>` (grow only): lvextend on the metadata
 * host → refresh the device-mapper table on the other server → SCST
 * resync_size (LIO reads the size of its block device itself) → on every
 * worker that has sessions for the target: rescan them and `multipathd resize
 * map`, and with --grow-fs grow the filesystem where it is mounted.
 */

export interface ResizeRequest {
  name: string;
  sizeBytes: number;
  growFs: boolean;
  lockWaitS: number;
  workerConcurrency?: number;
}

export interface ResizeDecision {
  identity: Identity | null;
  fromBytes: number;
  toBytes: number;
  extend: boolean;
  fs: Filesystem | null;
}

export const PHASE_EXTEND = 'extend the logical volume on the metadata host';
export const PHASE_REFRESH = 'refresh the device size on the storage servers';
export const PHASE_RESYNC = 'resync the SCST device size';
export const PHASE_WORKERS = 'rescan the sessions and resize the multipath maps on the workers';

export const DECISION = valueKey<ResizeDecision>('resize');

function decision(state: RunState): ResizeDecision {
  const d = state.values.get(DECISION);
  if (!d) throw new Error('internal: the read phase made no decision about the resize');
  return d;
}

/** A device's size in bytes, or null where it is not there (an LV not active on that server). */
const sizeOf = (r: RunResult): number | null => (r.exitCode === 0 ? Number(r.stdout.trim()) : null);

/** What the refresh phase reads on each storage server: the LV's size as the kernel sees it. */
const refreshProbes = (dev: string) => ({ size: probe(['blockdev', '--getsize64', dev], sizeOf) });

/** What the SCST phase reads: the size SCST has for the device. */
const resyncProbes = (name: string) => ({
  size: probe(
    ['sh', '-c', 'd=/sys/kernel/scst_tgt/devices/$1; if [ -r "$d/size" ]; then head -n 1 "$d/size"; else echo $(( $(head -n 1 "$d/size_mb") * 1048576 )); fi', 'scst-size', name],
    sizeOf,
  ),
});

/** What the worker phase reads: sessions, maps and mounts. */
const resizeWorkerProbes = { sessions: workerProbes.sessions, maps: workerProbes.maps, mounts: workerProbes.mounts };
type WorkerFacts = FactsOf<typeof resizeWorkerProbes>;

/** The worker's map of the target and where it is mounted (from the worker phase's facts). */
export function workerView(iqn: string, facts: WorkerFacts | null): {
  portals: string[];
  map: MultipathMap | null;
  mounts: Mount[];
} {
  if (!facts) return { portals: [], map: null, mounts: [] };
  const tp = targetPaths(iqn, facts.sessions, facts.maps);
  const map = tp.maps.length === 1 ? (tp.maps[0] as MultipathMap) : null;
  const sources = map ? new Set([`/dev/mapper/${map.name}`, `/dev/${map.dm}`]) : new Set<string>();
  return { portals: tp.sessions.map((s) => s.portal), map, mounts: facts.mounts.filter((m) => sources.has(m.source)) };
}

export function growFsArgv(fs: string, mapName: string, mountpoint: string): string[] | null {
  if (fs === 'ext4' || fs === 'ext3' || fs === 'ext2') return ['resize2fs', `/dev/mapper/${mapName}`];
  if (fs === 'xfs') return ['xfs_growfs', mountpoint];
  return null;
}

export function resizePlan(site: VolumeSite, req: ResizeRequest, owner: LockOwner): Plan {
  const iqn = iqnOf(site, req.name);
  const dev = lvPath(site.vg, req.name);
  // After the storage lock, the volume's own (no wait): refused while a backup of the volume holds it.
  const phases: Phase[] = [lockPhase(site, owner, req.lockWaitS), volumeLockPhase(site, req.name, owner, 0)];
  phases.push(
    readPhase(site, req.name, (host, f, state) => {
      if (!f) {
        if (host === site.meta) state.values.set(DECISION, { identity: null, fromBytes: 0, toBytes: req.sizeBytes, extend: true, fs: null });
        return;
      }
      if (!f.lv) throw new UsageError(`no volume "${req.name}": ${site.vg} has no LV ${req.name} on ${host}`, ['See the volumes with: enssib volume list']);
      if (host !== site.meta) return;
      const want = roundToExtents(req.sizeBytes, f.vg?.extentBytes ?? 1);
      if (want < f.lv.sizeBytes) {
        throw new UsageError(`volume "${req.name}" has ${formatBytes(f.lv.sizeBytes)}; it cannot shrink to ${formatBytes(want)}`, ['Volumes only grow (shrinking a filesystem in use loses data).']);
      }
      const delta = want - f.lv.sizeBytes;
      if (f.vg && delta > f.vg.freeBytes) throw new UsageError(`growing "${req.name}" by ${formatBytes(delta)} needs more than ${site.vg} has free on ${host} (${formatBytes(f.vg.freeBytes)})`);
      let identity: Identity | null;
      try {
        identity = identityFromTags(f.lv.tags);
      } catch {
        identity = null;
      }
      state.values.set(DECISION, { identity, fromBytes: f.lv.sizeBytes, toBytes: want, extend: delta > 0, fs: fsFromTags(f.lv.tags) } satisfies ResizeDecision);
    }),
  );
  phases.push({
    title: PHASE_EXTEND,
    hosts: [site.meta],
    plan: (_h, _f, state) => (decision(state).extend ? [command(lvextendArgv(site.vg, req.name, decision(state).toBytes), 'grow the LV')] : []),
  });
  phases.push(
    probePhase({
      title: PHASE_REFRESH,
      hosts: site.servers.map((s) => s.name),
      probes: () => refreshProbes(dev),
      plan: (host, facts, state) => {
        const d = decision(state);
        if (!facts) return host === site.meta ? [] : [command(lvRefreshArgv(site.vg, req.name), 'reload the size written on the metadata host')];
        if (facts.size === null) return []; // not active here: it gets the new size when activated
        return facts.size === d.toBytes ? [] : [command(lvRefreshArgv(site.vg, req.name), 'reload the size written on the metadata host')];
      },
    }),
  );
  if (site.driver === 'scst') {
    phases.push(
      probePhase({
        title: PHASE_RESYNC,
        hosts: site.servers.map((s) => s.name),
        probes: () => resyncProbes(req.name),
        plan: (_h, facts, state) => (facts && facts.size === decision(state).toBytes ? [] : [command(resyncArgv(req.name), 'SCST re-reads the size and tells the initiators')]),
      }),
    );
  }
  if (site.workers.length > 0) {
    phases.push(
      probePhase({
        title: PHASE_WORKERS,
        hosts: site.workers,
        continueOnError: true,
        ...(req.workerConcurrency ? { concurrency: req.workerConcurrency } : {}),
        probes: () => resizeWorkerProbes,
        plan: (host, facts) => {
          if (!facts) {
            return [
              ...site.servers.map((s) => command(rescanArgv(iqn, s.portal), `if a session runs through ${s.portal}: rescan it`)),
              command(resizeMapArgv('<map of the volume>'), 'if the worker has the map'),
              ...(req.growFs
                ? (['ext4', 'xfs'] as const).map((fs) => command(growFsArgv(fs, '<map of the volume>', '<mountpoint>') as string[], `if an ${fs} filesystem of the volume is mounted on this worker (--grow-fs)`))
                : []),
            ];
          }
          const v = workerView(iqn, facts);
          const actions: Action[] = v.portals.map((p) => command(rescanArgv(iqn, p), `rescan the session through ${p}`, { timeoutMs: 120_000 }));
          if (actions.length > 0) actions.push(command(['udevadm', 'settle', '--timeout=30'], 'wait for udev'));
          if (v.map) actions.push(command(resizeMapArgv(v.map.name), 'the map takes the new size'));
          const mount = v.mounts[0];
          if (req.growFs && v.map && mount) {
            const grow = growFsArgv(mount.fstype, v.map.name, mount.target);
            if (!grow) throw new OperationError(`${host}: cannot grow a ${mount.fstype} filesystem`);
            actions.push(command(grow, `grow the filesystem mounted at ${mount.target}`, { timeoutMs: 30 * 60_000 }));
          }
          return actions;
        },
      }),
    );
  }
  return { title: `volume resize ${req.name} ${formatBytes(req.sizeBytes)}`, mutating: true, phases, always: [volumeUnlockPhase(site, req.name, owner), releasePhase(site, owner)], prefetch: site.workers };
}

export interface ResizeResult {
  name: string;
  from: string;
  to: string;
  toBytes: number;
  outcome: 'grown' | 'unchanged' | 'failed' | 'planned';
  filesystem: { host: string; mountpoint: string; fstype: string; grown: boolean; command: string | null }[];
  pending: { host: string; error: string }[];
}

export function resizeResult(site: VolumeSite, req: ResizeRequest, report: RunReport): ResizeResult | null {
  const d = report.state.values.get(DECISION);
  if (!d) return null;
  const iqn = iqnOf(site, req.name);
  const workers = report.phases.find((p) => p.title === PHASE_WORKERS);
  const filesystem: ResizeResult['filesystem'] = [];
  for (const w of site.workers) {
    const status = workers?.hosts.find((h) => h.host === w)?.status;
    // A worker that failed in the phase (its facts may not parse) is listed under `pending`.
    if (status === 'failed') continue;
    const v = workerView(iqn, probedFacts(report.state, PHASE_WORKERS, w, resizeWorkerProbes));
    const m = v.mounts[0];
    if (!v.map || !m) continue;
    const grow = growFsArgv(m.fstype, v.map.name, m.target);
    filesystem.push({ host: w, mountpoint: m.target, fstype: m.fstype, grown: req.growFs && status === 'done', command: grow ? grow.join(' ') : null });
  }
  const extend = report.phases.find((p) => p.title === PHASE_EXTEND)?.hosts[0];
  let outcome: ResizeResult['outcome'];
  if (report.mode !== 'apply') outcome = 'planned';
  else if (report.stoppedAt) outcome = 'failed';
  else outcome = extend?.status === 'done' ? 'grown' : 'unchanged';
  return {
    name: req.name,
    from: formatBytes(d.fromBytes),
    to: formatBytes(d.toBytes),
    toBytes: d.toBytes,
    outcome,
    filesystem,
    pending: (workers?.hosts ?? []).filter((h) => h.status === 'failed').map((h) => ({ host: h.host, error: h.error?.message ?? 'failed' })),
  };
}

export function resizeResultLines(r: ResizeResult, growFs: boolean, fsTag: string | null): string[] {
  if (r.outcome === 'planned' || r.outcome === 'failed') return [];
  const lines = ['', r.outcome === 'grown' ? `Volume ${r.name} grown from ${r.from} to ${r.to}.` : `Volume ${r.name} already has ${r.to}: unchanged.`];
  if (r.filesystem.length === 0) {
    lines.push(
      `  The filesystem is not mounted on any worker: grow it when it is next mounted (${fsTag === 'xfs' ? 'xfs_growfs MOUNTPOINT' : 'resize2fs /dev/mapper/MAP'} on that worker, or run this command again with --grow-fs then).`,
    );
  }
  for (const f of r.filesystem) {
    if (f.grown) lines.push(`  ${f.host}: the ${f.fstype} filesystem mounted at ${f.mountpoint} was grown.`);
    else lines.push(`  ${f.host}: ${f.fstype} mounted at ${f.mountpoint}: grow it with ${growFs ? '' : '--grow-fs, or on ' + f.host + ': '}${f.command ?? '(no online grow for this filesystem)'}`);
  }
  for (const p of r.pending) lines.push(`  ${p.host}: not rescanned (${p.error}); run the command again when it answers.`);
  return lines;
}
