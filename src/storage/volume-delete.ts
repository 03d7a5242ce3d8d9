import { probe, probedFacts, probePhase, type FactsOf } from '../engine/probe.js';
import type { Action, Phase, Plan, RunReport, RunState } from '../engine/types.js';
import { LOCAL } from '../engine/types.js';
import { OperationError, UsageError } from '../errors.js';
import { exportTrace, parseTargetSessions, targetSessionsArgv, unexportActions } from './exports.js';
import { ISCSI_ERR, deleteNodeArgv, flushMapArgv, logoutArgv, targetPaths, workerProbes } from './initiator.js';
import type { VolumeUser } from './kube.js';
import type { LockOwner } from './lock.js';
import { ID_TAG_PREFIX, VOLUME_TAG, identityFromTags } from './identity.js';
import { lvDeactivateArgv, lvRef, lvremoveArgv, type LvInfo } from './lvm.js';
import { formatBytes } from '../validate.js';
import { command, iqnOf, lockPhase, readFacts, readPhase, releasePhase, type VolumeSite } from './volume.js';
import { volumeLockPhase, volumeUnlockPhase } from './volume-lock.js';

/**
 * `enssib volume delete <name>`: refused while any worker has the volume open
 * or mounted, or a PersistentVolume refers to it; then log out the sessions,
 * flush the maps and forget the target on the workers, remove the exports on
 * both servers, deactivate the LV on the other server and remove it on the
 * metadata host. Nothing is undone (a removed export cannot come back
 * unnoticed); each phase plans from facts, so running it again finishes a
 * delete that stopped half way.
 */

export interface DeleteRequest {
  name: string;
  lockWaitS: number;
  /** Ask the API server which PersistentVolumes use the volume (false with --skip-pv-check). */
  checkPvs: boolean;
  workerConcurrency?: number;
}

export interface DeleteDeps {
  owner: LockOwner;
  /** PersistentVolumes and pods using the target (API call). */
  users?: (iqn: string) => Promise<VolumeUser[]>;
}

export const PHASE_TARGET_SESSIONS = 'read who has a session on the target on the storage servers';
export const PHASE_WORKERS_READ = 'read sessions, maps and mounts on the workers';
export const PHASE_GUARD = 'check that nothing uses the volume';
export const PHASE_WORKERS_CLEAN = 'log out, flush the maps and forget the target on the workers';
export const PHASE_UNEXPORT = 'remove the exports on both storage servers';
export const PHASE_DEACTIVATE = 'deactivate the logical volume on the other storage servers';
export const PHASE_LVREMOVE = 'remove the logical volume on the metadata host';

type WorkerFacts = FactsOf<typeof workerProbes>;

/** What a worker holds of the target: sessions (portals), the map, node records, and who has it open. */
export function workerHold(iqn: string, facts: WorkerFacts | null) {
  if (!facts) return null;
  const tp = targetPaths(iqn, facts.sessions, facts.maps);
  const map = tp.maps.length === 1 ? tp.maps[0] : undefined;
  const open = map ? (facts.dmOpen.get(map.name) ?? 0) : 0;
  const disks = new Set(tp.sessions.flatMap((s) => s.disks.map((d) => `/dev/${d.name}`)));
  const sources = new Set([...disks, ...(map ? [`/dev/mapper/${map.name}`, `/dev/${map.dm}`] : [])]);
  const mounts = facts.mounts.filter((m) => sources.has(m.source));
  return {
    portals: tp.sessions.map((s) => s.portal),
    maps: tp.maps.map((m) => m.name),
    open,
    mounts,
    records: facts.nodes.filter((n) => n.iqn === iqn).length,
  };
}

/** What a storage server says about the initiators logged in to the volume's target (an output it cannot read refuses the delete). */
const targetProbes = (site: VolumeSite, name: string, host: string) => ({
  initiators: probe(targetSessionsArgv(site, name), (r) => {
    try {
      return parseTargetSessions(r);
    } catch (e) {
      throw new OperationError(`${host}: ${(e as Error).message}`, ['Nothing was changed.']);
    }
  }),
});

const REFUSALS = {
  delete: { rule: 'enssib deletes only its own volumes', hint: 'Nothing was changed. If it really is to go, remove it with the LVM tools yourself.' },
  backup: { rule: 'enssib backs up only its own volumes', hint: 'Nothing was changed. Copy it with the LVM tools yourself, or make the volumes enssib is to back up with enssib volume create.' },
  restore: { rule: 'enssib restores only over its own volumes', hint: 'Nothing was changed. Restore into a new volume instead (without --force).' },
} as const;

/**
 * Why an LV is not a volume enssib may delete (or back up), or null: enssib
 * touches only the LVs it made, marked with its tag and an identity tag. The refusal says
 * what the LV is (size, tags, state), so the admin sees whose it may be.
 */
export function notEnssibs(site: VolumeSite, host: string, lv: LvInfo, action: keyof typeof REFUSALS = 'delete'): UsageError | null {
  let id: string | null = null;
  let bad: string | null = null;
  try {
    id = identityFromTags(lv.tags);
  } catch (e) {
    bad = (e as Error).message;
  }
  if (lv.tags.includes(VOLUME_TAG) && id && !bad) return null;
  const what = [
    `LV ${lvRef(site.vg, lv.name)} on ${host}: ${formatBytes(lv.sizeBytes)}, ${lv.active ? 'active' : 'inactive'}${lv.open ? ', open (in use on that host)' : ''}`,
    `tags: ${lv.tags.length > 0 ? lv.tags.join(', ') : 'none'}`,
  ];
  const why = bad ?? (lv.tags.includes(VOLUME_TAG) ? `it has no ${ID_TAG_PREFIX}… identity tag` : `it has no "${VOLUME_TAG}" tag`);
  const { rule, hint } = REFUSALS[action];
  return new UsageError(`${lvRef(site.vg, lv.name)} is not a volume enssib made (${why}); ${rule}`, [...what, hint]);
}

/** Sessions on the volume's target from initiators that are none of the inventory's workers (pure; [] in a client dry run). */
export function foreignSessions(site: VolumeSite, name: string, state: RunState): { server: string; initiator: string }[] {
  const known = new Set<string>();
  for (const w of site.workers) {
    const initiator = probedFacts(state, PHASE_WORKERS_READ, w, workerProbes)?.initiator;
    if (initiator) known.add(initiator);
  }
  const out: { server: string; initiator: string }[] = [];
  for (const s of site.servers) {
    const f = probedFacts(state, PHASE_TARGET_SESSIONS, s.name, targetProbes(site, name, s.name));
    for (const initiator of f?.initiators ?? []) if (!known.has(initiator)) out.push({ server: s.name, initiator });
  }
  return out;
}

export function deletePlan(site: VolumeSite, req: DeleteRequest, deps: DeleteDeps): Plan {
  const iqn = iqnOf(site, req.name);
  // After the storage lock, the volume's own (no wait): refused while a backup of the volume holds it.
  const phases: Phase[] = [lockPhase(site, deps.owner, req.lockWaitS), volumeLockPhase(site, req.name, deps.owner, 0)];
  phases.push(
    readPhase(site, req.name, (host, f) => {
      // The metadata host's LVM view decides (it writes the VG's metadata; it removes the LV).
      const refusal = host === site.meta && f?.lv ? notEnssibs(site, host, f.lv) : null;
      if (refusal) throw refusal;
    }),
  );
  phases.push(
    probePhase({
      title: PHASE_TARGET_SESSIONS,
      hosts: site.servers.map((s) => s.name),
      probes: (host) => targetProbes(site, req.name, host),
      // Reading the facts parses them: output that makes no sense refuses the delete here, before anything changed.
      decide: () => undefined,
    }),
  );
  if (site.workers.length > 0) {
    phases.push(
      probePhase({
        title: PHASE_WORKERS_READ,
        hosts: site.workers,
        ...(req.workerConcurrency ? { concurrency: req.workerConcurrency } : {}),
        probes: () => workerProbes,
        decide: (host, facts) => {
          const h = workerHold(iqn, facts);
          if (!h) return;
          if (h.mounts.length > 0) {
            throw new OperationError(`volume "${req.name}" is mounted on ${host}`, [...h.mounts.map((m) => `${m.source} on ${m.target} (${m.fstype})`), 'Stop the pods that use it first; nothing was changed.']);
          }
          if (h.open > 0) throw new OperationError(`volume "${req.name}" is in use on ${host} (map ${h.maps.join(', ')} opened ${h.open} time(s))`, ['Stop what uses it first; nothing was changed.']);
        },
      }),
    );
  }
  phases.push({
    title: PHASE_GUARD,
    hosts: [LOCAL],
    plan: (_h, _f, state) => {
      const known = site.servers.some((s) => {
        const f = readFacts(site, state, s.name, req.name);
        return f === null || f.lv !== null || exportTrace(site, f, req.name).length > 0;
      });
      if (!known) throw new UsageError(`no volume "${req.name}": no LV and no export of it on ${site.servers.map((s) => s.name).join(' or ')}`, ['See the volumes with: enssib volume list']);
      const foreign = foreignSessions(site, req.name, state);
      if (foreign.length > 0) {
        throw new OperationError(`volume "${req.name}" has iSCSI sessions from initiators that are no worker of the inventory`, [
          ...foreign.map((f) => `on ${f.server}: ${f.initiator}`),
          'Something outside the inventory uses this volume: log it out there first (iscsiadm -m node -T … --logout). Nothing was changed.',
        ]);
      }
      if (!req.checkPvs) return [];
      return [
        {
          kind: 'task',
          label: `ask the Kubernetes API which PersistentVolumes and pods use ${iqn}`,
          lines: ['GET /api/v1/persistentvolumes', 'GET /api/v1/pods'],
          run: async () => {
            if (!deps.users) throw new OperationError('no Kubernetes client');
            const users = await deps.users(iqn);
            const pvs = users.filter((u) => u.binding);
            if (pvs.length > 0) {
              throw new OperationError(`volume "${req.name}" is referred to by ${pvs.map((p) => `PersistentVolume ${p.name} (${p.detail})`).join(', ')}`, [
                `Delete the PersistentVolume first (kubectl delete pv ${pvs[0]?.name}); nothing was changed.`,
              ]);
            }
            const pods = users.filter((u) => u.kind === 'Pod');
            if (pods.length > 0) {
              throw new OperationError(`volume "${req.name}" is used by ${pods.map((p) => `Pod ${p.namespace ? `${p.namespace}/` : ''}${p.name} (${p.detail})`).join(', ')}`, [
                'The pod names the target in its own spec (an inline iSCSI volume). Delete or change that pod (or its Deployment) first; nothing was changed.',
              ]);
            }
            return { changed: false, message: 'no PersistentVolume and no pod uses the volume' };
          },
        },
      ];
    },
  });
  if (site.workers.length > 0) {
    phases.push({
      title: PHASE_WORKERS_CLEAN,
      hosts: site.workers,
      ...(req.workerConcurrency ? { concurrency: req.workerConcurrency } : {}),
      plan: (host, _f, state) => {
        const h = workerHold(iqn, probedFacts(state, PHASE_WORKERS_READ, host, workerProbes));
        if (!h) {
          return [
            ...site.servers.map((s) => command(logoutArgv(iqn, s.portal), 'if logged in', { okCodes: [0, ISCSI_ERR.noObjsFound] })),
            command(flushMapArgv('<map of the volume>'), 'if the worker has a multipath map of the volume'),
            command(deleteNodeArgv(iqn), 'if the worker knows the target', { okCodes: [0, ISCSI_ERR.noObjsFound] }),
          ];
        }
        const actions: Action[] = h.portals.map((p) => command(logoutArgv(iqn, p), `log out of ${p}`, { okCodes: [0, ISCSI_ERR.noObjsFound] }));
        for (const m of h.maps) {
          actions.push(command(flushMapArgv(m), `flush the map ${m} if it is left`));
        }
        if (h.records > 0) actions.push(command(deleteNodeArgv(iqn), 'forget the target', { okCodes: [0, ISCSI_ERR.noObjsFound] }));
        return actions;
      },
    });
  }
  phases.push({
    title: PHASE_UNEXPORT,
    hosts: site.servers.map((s) => s.name),
    plan: (host, _f, state) => unexportActions(site, readFacts(site, state, host, req.name), req.name),
  });
  const others = site.servers.filter((s) => s.name !== site.meta).map((s) => s.name);
  if (others.length > 0) {
    phases.push({
      title: PHASE_DEACTIVATE,
      hosts: others,
      plan: (host, _f, state) => {
        const f = readFacts(site, state, host, req.name);
        return !f || f.lv?.active ? [command(lvDeactivateArgv(site.vg, req.name), 'deactivate')] : [];
      },
    });
  }
  phases.push({
    title: PHASE_LVREMOVE,
    hosts: [site.meta],
    plan: (host, _f, state: RunState) => {
      const f = readFacts(site, state, host, req.name);
      return !f || f.lv ? [command(lvremoveArgv(site.vg, req.name), `remove ${lvRef(site.vg, req.name)} and its data`)] : [];
    },
  });
  return { title: `volume delete ${req.name}`, mutating: true, phases, always: [volumeUnlockPhase(site, req.name, deps.owner), releasePhase(site, deps.owner)], prefetch: site.workers };
}

export function deleteOutcome(report: RunReport): 'deleted' | 'failed' | 'planned' {
  if (report.mode !== 'apply') return 'planned';
  return report.stoppedAt || report.exitCode !== 0 ? 'failed' : 'deleted';
}
