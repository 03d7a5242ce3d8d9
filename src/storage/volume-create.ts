import type { Action, Phase, Plan, RunReport, RunState } from '../engine/types.js';
import { LOCAL } from '../engine/types.js';
import { probe, probePhase, rawProbe, valueKey } from '../engine/probe.js';
import { OperationError, UsageError } from '../errors.js';
import { formatBytes } from '../validate.js';
import { exportActions, exportUndo } from './exports.js';
import { ID_TAG_PREFIX, RESTORING_TAG, identityFromTags, identityTag, type Identity } from './identity.js';
import {
  ISCSI_ERR,
  checkPathsArgv,
  deleteNodeArgv,
  discoveryArgv,
  discoverTargetArgv,
  nodesArgv,
  parseCheckPaths,
  parseMultipath,
  parseNodes,
  parseSessions,
  sessionsArgv,
  verifyPaths,
} from './initiator.js';
import { iscsiStanza, pvManifest, stanzaYaml, type IscsiStanza, type PvManifest } from './kube.js';
import { releaseArgv, type LockOwner } from './lock.js';
import type { RunResult } from '../remote/types.js';
import {
  fsFromTags,
  lvActivateArgv,
  lvDeactivateArgv,
  lvPath,
  lvRef,
  lvcreateArgv,
  lvmFailure,
  lvsArgv,
  mkfsArgv,
  parseLvs,
  roundToExtents,
  volumeTags,
  type Filesystem,
} from './lvm.js';
import {
  command,
  iqnOf,
  lockPhase,
  readFacts,
  readPhase,
  releasePhase,
  type StorageFacts,
  type VolumeSite,
} from './volume.js';

/**
 * `enssib volume create <name> <size>` as a plan:
 *   lock → read DRBD/LVM/targets on both storage servers → lvcreate on the
 *   metadata host → mkfs there while the other activates → export on both
 *   with one identity → discovery on every worker in parallel → on one
 *   worker, one script: log in, check one multipath map with two active
 *   paths, log out → (PersistentVolume) → release the lock (always).
 * Every phase plans from facts, so a re-run converges; a failure after
 * lvcreate undoes what this run created unless --keep-on-failure.
 */

export interface CreateRequest {
  name: string;
  sizeBytes: number;
  fs: Filesystem;
  /** The worker that verifies the two paths (null: no worker in the inventory). */
  verifyOn: string | null;
  pv: boolean;
  keepOnFailure: boolean;
  lockWaitS: number;
  /** Workers handled at once in the worker phases (default: the global limit). */
  workerConcurrency?: number;
  /** Content written into the new LV before it is exported (a restore); the volume must not exist yet. */
  fill?: CreateFill;
}

/**
 * What a run that fills the LV it creates (a restore) adds to the plan. The LV
 * carries `tags` from its creation (an incomplete mark the `write` phases
 * remove once complete); no filesystem is made on it. The write can take
 * hours: the storage lock is released before it and taken again after it (the
 * volume's own lock, which `before` takes, covers it meanwhile).
 */
export interface CreateFill {
  /** After the read, before the LV is created: the volume's own lock (required), checks of the content. */
  before: Phase[];
  /** After the LV is active on every storage server, before any export (no initiator sees it half written), without the storage lock. */
  write: Phase[];
  tags: string[];
  /** Run last whatever happened, before the storage lock is released. */
  always: Phase[];
}

export interface CreateDeps {
  /** Identity for a new LV (an existing LV keeps its own, read from its tag). */
  identity: Identity;
  owner: LockOwner;
  /** Creates the PersistentVolume (API call), for --pv. */
  createPv?: (pv: PvManifest) => Promise<{ changed: boolean; message: string }>;
}

/** What the read phase decided on the metadata host, for the phases after it. */
export interface CreateDecision {
  identity: Identity;
  existed: boolean;
  fs: Filesystem;
  /** Size of the LV (rounded to extents when facts are known). */
  sizeBytes: number;
  mkfs: boolean;
}

export const PHASE_LV = 'create the logical volume on the metadata host';
export const PHASE_ACTIVATE = 'make the filesystem on the metadata host, activate the logical volume on the others';
export const PHASE_EXPORT = 'export on both storage servers with one device identity';
export const PHASE_DISCOVERY = 'discovery on every worker (both portals)';
export const phaseCheckPaths = (w: string) => `check one multipath map with two active paths on ${w} (log in, check, log out)`;
export const PHASE_PV = 'create the PersistentVolume';
export const PHASE_WRITE_UNLOCK = 'release the storage lock for the write (the lock of the volume stays)';
export const PHASE_WRITE_RELOCK = 'take the storage lock again to export';
/** After a write of hours, the storage lock is waited for at least this long (another command holds it for a minute or so). */
export const RELOCK_WAIT_S = 600;

const DECISION = valueKey<CreateDecision>('volume');
/** Create also reads the VG's physical volumes: it allocates only on the inventory's DRBD device. */
const FACTS = { pvs: true } as const;
const WWID = valueKey<string>('wwid');

export function decision(state: RunState): CreateDecision {
  const d = state.values.get(DECISION);
  if (!d) throw new Error('internal: the read phase made no decision about the volume');
  return d;
}

/** The metadata host's decision from its facts (pure; throws UsageError on a conflict the user must resolve). */
export function decideCreate(site: VolumeSite, req: CreateRequest, candidate: Identity, f: StorageFacts | null): CreateDecision {
  const mkfs = req.fs !== 'none' && !req.fill;
  if (!f) return { identity: candidate, existed: false, fs: req.fs, sizeBytes: req.sizeBytes, mkfs };
  const vg = f.vg;
  if (!vg) throw new OperationError(`${f.host}: volume group ${site.vg} not found`);
  const want = roundToExtents(req.sizeBytes, vg.extentBytes);
  const lv = f.lv;
  if (lv && req.fill) {
    throw new UsageError(`volume "${req.name}" exists (${lvRef(site.vg, req.name)} on ${f.host}, ${formatBytes(lv.sizeBytes)}): nothing was changed`, [
      'Give another name with --to NAME, or restore over it with --force (refused while a worker uses it).',
    ]);
  }
  if (lv) {
    let id: Identity | null;
    try {
      id = identityFromTags(lv.tags);
    } catch (e) {
      throw new UsageError(`${lvRef(site.vg, req.name)} on ${f.host}: ${(e as Error).message}`);
    }
    if (!id) {
      throw new UsageError(`an LV ${lvRef(site.vg, req.name)} exists on ${f.host} but enssib did not create it (no ${ID_TAG_PREFIX}… tag)`, [
        'enssib exports only volumes whose device identity is recorded on the LV. To adopt this LV, give it an identity and run the command again:',
        `  lvchange --addtag enssib --addtag ${identityTag(candidate)} ${lvRef(site.vg, req.name)}`,
      ]);
    }
    if (lv.sizeBytes !== want) {
      throw new UsageError(`volume "${req.name}" exists with size ${formatBytes(lv.sizeBytes)}, not ${formatBytes(want)}`, [
        lv.sizeBytes < want ? `To grow it: enssib volume resize ${req.name} ${formatBytes(want)}` : 'Volumes only grow: see enssib volume resize.',
      ]);
    }
    if (lv.tags.includes(RESTORING_TAG)) {
      throw new UsageError(`volume "${req.name}" holds an incomplete restore (LV tag ${RESTORING_TAG} on ${lvRef(site.vg, req.name)}): it is not exported`, [
        'A restore of it is running, or one did not complete: run that restore again, or remove the volume with enssib volume delete.',
      ]);
    }
    const tagFs = fsFromTags(lv.tags);
    // An LV that exists was not created by this run: whatever it holds, no filesystem is ever made on it.
    return { identity: id, existed: true, fs: tagFs ?? req.fs, sizeBytes: lv.sizeBytes, mkfs: false };
  }
  if (want > vg.freeBytes) {
    throw new UsageError(`size ${formatBytes(want)} is more than volume group ${site.vg} has free on ${f.host} (${formatBytes(vg.freeBytes)})`);
  }
  return { identity: candidate, existed: false, fs: req.fs, sizeBytes: want, mkfs };
}

/** The metadata host activates an LV that existed inactive (a new one is active from lvcreate). */
function activatedHere(d: CreateDecision, f: StorageFacts | null): boolean {
  return d.existed && f !== null && !f.lv?.active;
}

/**
 * Removes the LV this run created, decided from `lvs` read on the metadata host
 * just before: nothing when it is not there (the lvcreate never got that far),
 * and never an LV that carries another identity.
 */
export function lvUndo(site: VolumeSite, name: string, identity: Identity, lvs: RunResult | null): Action[] {
  if (!lvs) throw new OperationError(`${site.meta}: the LVs were not read again before the undo`);
  if (lvs.exitCode !== 0) throw new OperationError(`${site.meta}: cannot read the LVs to decide the undo: ${lvmFailure(lvs, site.vg)}`);
  const lv = parseLvs(lvs.stdout).find((l) => l.vg === site.vg && l.name === name);
  if (!lv) return [];
  if (identityFromTags(lv.tags) !== identity) {
    throw new OperationError(`${lvRef(site.vg, name)} on ${site.meta} does not carry this run's identity ${identity}: it is kept`, [`Check it with: lvs -o +lv_tags ${lvRef(site.vg, name)}`]);
  }
  return [command(['lvremove', '--yes', lvRef(site.vg, name)], 'remove the LV this run created')];
}

/** A task that refuses to remove the LV this run created, saying why and how to finish. */
function keepLv(site: VolumeSite, name: string) {
  return (why: string, because: string, hints: string[]): Action => ({
    kind: 'task',
    label: `keep ${lvRef(site.vg, name)}: ${why}`,
    lines: [],
    run: async () => {
      throw new OperationError(`${lvRef(site.vg, name)} left on ${site.meta}: ${because}`, hints);
    },
  });
}

const holdsLock = (r: RunResult | undefined, owner: LockOwner) => r?.exitCode === 0 && r.stdout.split('\n').some((l) => l.startsWith(`token=${owner.token} `));

/**
 * Releases the storage lock for a write of hours (the volume's own lock stays:
 * a resize, delete or backup of it refuses meanwhile; other volume commands
 * run). Undone by taking it back — unless the run holds it again — so that
 * what the run created is removed under it.
 */
function writeUnlockPhase(site: VolumeSite, owner: LockOwner, req: CreateRequest): Phase {
  const take = lockPhase(site, owner, Math.max(req.lockWaitS, RELOCK_WAIT_S));
  return {
    title: PHASE_WRITE_UNLOCK,
    hosts: [site.meta],
    independent: true,
    plan: () => [command(releaseArgv(site.lockFile, owner), `unlock ${site.lockFile}: other volume commands may run during the write`)],
    undoChecks: () => [['cat', '--', site.lockFile]],
    undo: req.keepOnFailure ? undefined : (host, state, now) => (holdsLock(now?.[0], owner) ? [] : (take.plan?.(host, null, state) ?? [])),
  };
}

export function createPlan(site: VolumeSite, req: CreateRequest, deps: CreateDeps): Plan {
  const keep = keepLv(site, req.name);
  const iqn = iqnOf(site, req.name);
  const dev = lvPath(site.vg, req.name);
  const portals = site.servers.map((s) => s.portal);
  const undo = <T>(fn: T): T | undefined => (req.keepOnFailure ? undefined : fn);
  const phases: Phase[] = [lockPhase(site, deps.owner, req.lockWaitS)];

  phases.push(
    readPhase(
      site,
      req.name,
      (host, f, state) => {
        if (host === site.meta) state.values.set(DECISION, decideCreate(site, req, deps.identity, f));
      },
      FACTS,
    ),
    ...(req.fill?.before ?? []),
  );

  phases.push(
    probePhase({
      title: PHASE_LV,
      hosts: [site.meta],
      probes: () => ({}),
      plan: (_h, _f, state) => {
        const d = decision(state);
        return d.existed ? [] : [command(lvcreateArgv(site.vg, req.name, d.sizeBytes, [...volumeTags(d.identity, d.fs), ...(req.fill?.tags ?? [])]), 'LV with the volume identity as a tag')];
      },
      // What is on the host now decides the undo: an lvcreate that timed out or was cancelled may or may not have created the LV.
      undoProbes: () => ({ lvs: rawProbe(lvsArgv(site.vg)) }),
      undo: undo((_h: string, state: RunState, facts: { lvs: RunResult } | null): Action[] => {
        const d = decision(state);
        if (d.existed) return [];
        const failed = (state.undone ?? []).filter((u) => !u.ok && u.host !== site.meta);
        if (failed.length > 0) {
          const where = [...new Set(failed.map((u) => u.host))].join(', ');
          return [
            keep(`${where} may still use it`, `removing it while ${where} still exports or maps it would hand its extents to the next volume`, [
              `After cleaning up there: lvchange -an ${lvRef(site.vg, req.name)} (other servers), then on ${site.meta}: lvremove ${lvRef(site.vg, req.name)}`,
            ]),
          ];
        }
        if ((state.undone ?? []).some((u) => !u.ok && u.phase === PHASE_WRITE_UNLOCK)) {
          return [
            keep('the storage lock could not be taken back', 'it is not removed without the storage lock (it is not exported)', [
              `Remove it once the lock is free: enssib volume delete ${req.name}`,
            ]),
          ];
        }
        return lvUndo(site, req.name, d.identity, facts?.lvs ?? null);
      }),
      undoFailed: true,
    }),
  );

  phases.push({
    title: PHASE_ACTIVATE,
    hosts: site.servers.map((s) => s.name),
    // The filesystem is made on the metadata host while the other servers activate the LV (both before any export: no initiator ever sees it half-made).
    plan: (host, _f, state) => {
      const d = decision(state);
      const f = readFacts(site, state, host, req.name, FACTS);
      if (host === site.meta) {
        const mkfs = mkfsArgv(d.fs, dev);
        return [
          ...(activatedHere(d, f) ? [command(lvActivateArgv(site.vg, req.name), 'activate')] : []),
          ...(d.mkfs && mkfs ? [command(mkfs, `${d.fs} filesystem on the LV just created, only if it carries no signature`, { timeoutMs: 30 * 60_000 })] : []),
        ];
      }
      if (f?.lv?.active) return [];
      return [command(lvActivateArgv(site.vg, req.name), `activate here too (dual-primary DRBD: LVM metadata written on ${site.meta})`)];
    },
    // The filesystem goes with the LV (its removal); an activation this run made is taken back.
    undo: undo((host: string, state: RunState): Action[] =>
      host !== site.meta || activatedHere(decision(state), readFacts(site, state, host, req.name, FACTS)) ? [command(lvDeactivateArgv(site.vg, req.name), 'deactivate')] : [],
    ),
  });

  if (req.fill) phases.push(writeUnlockPhase(site, deps.owner, req), ...req.fill.write, { ...lockPhase(site, deps.owner, Math.max(req.lockWaitS, RELOCK_WAIT_S)), title: PHASE_WRITE_RELOCK });
  phases.push({
    title: PHASE_EXPORT,
    hosts: site.servers.map((s) => s.name),
    plan: (host, _f, state) => {
      const d = decision(state);
      const server = site.servers.find((s) => s.name === host);
      if (!server) throw new Error(`internal: ${host} is not a storage server`);
      return exportActions(site, server, readFacts(site, state, host, req.name, FACTS), { name: req.name, identity: d.identity });
    },
    undo: undo((host: string, state: RunState): Action[] => exportUndo(site, readFacts(site, state, host, req.name, FACTS), { name: req.name, identity: decision(state).identity })),
    undoFailed: true,
  });

  if (site.workers.length > 0) {
    phases.push(
      probePhase({
        title: PHASE_DISCOVERY,
        hosts: site.workers,
        continueOnError: true,
        ...(req.workerConcurrency ? { concurrency: req.workerConcurrency } : {}),
        probes: () => ({ nodes: probe(nodesArgv(), parseNodes) }),
        plan: (_h, facts) => {
          const known = (facts?.nodes ?? []).filter((n) => n.iqn === iqn).map((n) => n.portal);
          return portals
            .filter((p) => !known.includes(p))
            .map((p) => command(discoverTargetArgv(iqn, p), `discover the targets of ${p}; the target must be known through it`, { timeoutMs: 90_000 }));
        },
        undo: undo((): Action[] => [command(deleteNodeArgv(iqn), 'forget the target', { okCodes: [0, ISCSI_ERR.noObjsFound] })]),
      }),
    );
  }

  const w = req.verifyOn;
  if (w) {
    phases.push(
      probePhase({
        title: phaseCheckPaths(w),
        hosts: [w],
        probes: () => ({ sessions: probe(sessionsArgv(), parseSessions) }),
        plan: (_h, facts, state) => {
          // kubelet's sessions stay untouched: log in only where there is none
          const before = new Set((facts?.sessions ?? []).filter((x) => x.iqn === iqn).map((x) => x.portal));
          const todo = portals.filter((p) => !before.has(p));
          const flush = todo.length === portals.length;
          const what = `log in${todo.length ? ` through ${todo.join(' and ')}` : ''}, wait for udev and multipathd, read the sessions and maps, log out${flush ? ' and flush the map if multipathd has not removed it' : ''}`;
          return [
            command(checkPathsArgv(iqn, todo, 30, flush), what, {
              timeoutMs: 4 * 60_000,
              result: (r) => {
                const report = parseCheckPaths(r.stdout);
                if (!report) throw new OperationError(`${w}: the path check printed no report`, [r.stdout.trim(), r.stderr.trim()].filter(Boolean));
                const v = verifyPaths(iqn, portals, parseSessions(report.sessions), parseMultipath(report.multipath.stdout));
                if (!v.ok) throw new OperationError(`${w}: ${iqn} is not one multipath map with ${portals.length} active paths`, v.problems);
                state.values.set(WWID, v.map.wwid);
              },
            }),
          ];
        },
      }),
    );
  }

  if (req.pv) {
    phases.push({
      title: PHASE_PV,
      hosts: [LOCAL],
      continueOnError: true,
      plan: (_h, _f, state) => {
        const d = decision(state);
        const pv = pvManifest(site, req.name, d.sizeBytes, d.fs);
        return [
          {
            kind: 'task',
            label: `create PersistentVolume ${req.name} through the Kubernetes API`,
            lines: [`POST /api/v1/persistentvolumes`, `  name ${req.name}, capacity ${pv.spec.capacity.storage}, ReadWriteOnce, reclaim Retain`, ...stanzaYaml(pv.spec.iscsi).map((l) => `  ${l}`)],
            run: async () => {
              if (!deps.createPv) throw new OperationError('no Kubernetes client');
              return deps.createPv(pv);
            },
          },
        ];
      },
    });
  }

  return { title: `volume create ${req.name} ${formatBytes(req.sizeBytes)}`, mutating: true, phases, always: [...(req.fill?.always ?? []), releasePhase(site, deps.owner)], prefetch: site.workers };
}

// ---------------------------------------------------------------- result

export interface CreateResult {
  name: string;
  size: string;
  sizeBytes: number;
  identity: Identity;
  iqn: string;
  lun: 0;
  fsType: Filesystem;
  wwid: string | null;
  verifiedOn: string | null;
  outcome: 'created' | 'unchanged' | 'completed' | 'failed' | 'planned';
  kubernetes: { iscsi: IscsiStanza };
  /** Workers that could not be told about the target, with the commands to run there later. */
  pending: { host: string; error: string; commands: string[] }[];
}

const STRUCTURAL = [PHASE_LV, PHASE_ACTIVATE, PHASE_EXPORT, PHASE_DISCOVERY];

export function createResult(site: VolumeSite, req: CreateRequest, report: RunReport): CreateResult | null {
  const d = report.state.values.get(DECISION);
  if (!d) return null;
  const iqn = iqnOf(site, req.name);
  const phases = report.phases.filter((p) => STRUCTURAL.includes(p.title));
  const lv = report.phases.find((p) => p.title === PHASE_LV)?.hosts[0];
  const allUnchanged = phases.length > 0 && phases.every((p) => p.hosts.every((h) => h.status === 'unchanged'));
  const discovery = report.phases.find((p) => p.title === PHASE_DISCOVERY);
  const pending = (discovery?.hosts ?? [])
    .filter((h) => h.status === 'failed')
    .map((h) => ({
      host: h.host,
      error: h.error?.message ?? 'failed',
      commands: site.servers.map((s) => discoveryArgv(s.portal).join(' ')),
    }));
  let outcome: CreateResult['outcome'];
  if (report.mode !== 'apply') outcome = 'planned';
  else if (report.stoppedAt) outcome = 'failed';
  else if (allUnchanged) outcome = 'unchanged';
  else outcome = lv?.status === 'done' && !d.existed ? 'created' : 'completed';
  const wwid = report.state.values.get(WWID) ?? null;
  return {
    name: req.name,
    size: formatBytes(d.sizeBytes),
    sizeBytes: d.sizeBytes,
    identity: d.identity,
    iqn,
    lun: 0,
    fsType: d.fs,
    wwid,
    verifiedOn: wwid ? req.verifyOn : null,
    outcome,
    kubernetes: { iscsi: iscsiStanza(site, req.name, d.fs) },
    pending,
  };
}

export function createResultLines(r: CreateResult, cmdline: string): string[] {
  if (r.outcome === 'planned' || r.outcome === 'failed') return [];
  const head =
    r.outcome === 'unchanged'
      ? `Volume ${r.name} exists with ${r.size}: unchanged.`
      : r.outcome === 'created'
        ? `Volume ${r.name} created: ${r.size}, ${r.fsType === 'none' ? 'no filesystem' : r.fsType}.`
        : `Volume ${r.name} (${r.size}) completed.`;
  const lines = ['', head, `  identity ${r.identity}, target ${r.iqn}, LUN 0`];
  if (r.wwid) lines.push(`  checked on ${r.verifiedOn}: one multipath map ${r.wwid} with two active paths`);
  if (r.pending.length > 0) {
    lines.push('', `Not done on ${r.pending.length} worker(s) — the volume is created; run later, on each:`);
    for (const p of r.pending) {
      lines.push(`  ${p.host} (${p.error}):`);
      for (const c of p.commands) lines.push(`    ${c}`);
    }
    lines.push(`  or run again from here (it converges): ${cmdline}`);
  }
  lines.push('', 'Kubernetes iSCSI volume:', ...stanzaYaml(r.kubernetes.iscsi).map((l) => `  ${l}`));
  return lines;
}
