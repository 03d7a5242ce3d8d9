import { probe, probePhase, valueKey } from '../engine/probe.js';
import type { Phase, Plan, RunReport } from '../engine/types.js';
import { OperationError, UsageError } from '../errors.js';
import type { RunResult } from '../remote/types.js';
import { exportActions, parseTargetSessions, targetSessionsArgv, unexportActions } from '../storage/exports.js';
import { workerProbes } from '../storage/initiator.js';
import type { LockOwner } from '../storage/lock.js';
import { RESTORING_TAG, identityFromTags, type Identity } from '../storage/identity.js';
import { lvPath, lvRef, type Filesystem } from '../storage/lvm.js';
import { createPlan, type CreateDeps, type CreateFill } from '../storage/volume-create.js';
import { notEnssibs, workerHold } from '../storage/volume-delete.js';
import { volumeLockPhase, volumeUnlockPhase } from '../storage/volume-lock.js';
import { command, iqnOf, readFacts, readPhase, storageFacts, storageProbes, validateVolumeName, type VolumeSite } from '../storage/volume.js';
import { formatBytes } from '../validate.js';
import { extractArgv, infoArgv } from './borg.js';
import { backupFiles, type BackupRecord } from './catalogue.js';
import { atDestination, borgRepoOf, type BackupSite } from './site.js';

/**
 * `enssib backup restore <volume> <backup>`: the backup's image (zstd) is
 * decompressed on the metadata host straight onto an LV, after its sha256 was
 * checked against the catalogue record.
 *
 * Into a new volume (default): the volume-create plan — storage lock, LV with
 * enssib's tags (plus RESTORING_TAG), active on every server — then the
 * image written while nothing exports it, the mark removed, then the exports
 * on both servers with one identity, discovery and the two-path check. A
 * failure or Ctrl-C during the write undoes the new volume (enssib made it).
 *
 * Over an existing volume (--force): refused while any initiator has a session
 * on its target (read on both servers) or a worker has it mounted or logged
 * in; its export is taken offline on both servers for the write (no initiator
 * can log in to a changing device) and put back always — success, failure,
 * Ctrl-C; the LV is marked RESTORING_TAG while it is written, under the
 * volume's lock (a resize, delete or backup of it refuses meanwhile).
 */

export { RESTORING_TAG };

export const PHASE_CHECKSUM = "check the backup's sha256 against the catalogue";
export const PHASE_WRITE = 'write the backup onto the logical volume (zstd -d | dd)';
export const PHASE_WRITE_BORG = 'write the backup onto the logical volume (borg extract --stdout | dd)';
export const PHASE_ARCHIVE = 'check that the archive is in the borg repository';
export const PHASE_UNMARK = 'mark the volume complete';
export const PHASE_MARK = 'mark the volume incomplete while it is written';
export const PHASE_TARGET_SESSIONS = 'read who has a session on the target on the storage servers';
export const PHASE_WORKERS = 'read sessions and mounts on the workers';
export const PHASE_UNEXPORT = 'take the export offline on both storage servers for the write';
export const PHASE_REEXPORT = 'export the volume again on the storage servers';

/** The storage servers whose export of the volume this run took (or was about to take) offline. */
const UNEXPORTED = valueKey<string[]>('restore.unexported');
/** The volume's device identity (its LV tag), read before anything changed: the export is put back with it. */
const IDENTITY = valueKey<Identity>('restore.identity');

export interface RestoreRequest {
  record: BackupRecord;
  /** The volume written: a new one, or an existing one with `force`. */
  target: string;
  force: boolean;
  /** Filesystem tag of the new volume (the backed-up volume's, when known). */
  fs: Filesystem;
  lockWaitS: number;
  /** How long the write may take before it is stopped (seconds). */
  writeTimeoutS: number;
  keepOnFailure: boolean;
  verifyOn: string | null;
  workerConcurrency?: number;
  /** --force: the size of the volume written over (for the hint that exports it again). */
  targetBytes?: number;
}

/**
 * The default name of the volume a backup is restored into:
 * `<volume>-r<MMDDhhmm>` (the backup's month, day, hour and minute, UTC), short
 * enough for SCST's 16 characters with volume names of up to 6; checked like any
 * volume name (too long: give --to).
 */
export function restoreName(site: Pick<VolumeSite, 'driver' | 'iqnPrefix'>, id: string, volume: string): string {
  const stamp = /\.\d{4}(\d{4})T(\d{4})\d{2}Z$/.exec(id);
  if (!stamp) throw new UsageError(`backup id ${JSON.stringify(id)} is not a backup id`);
  const name = `${volume}-r${stamp[1]}${stamp[2]}`;
  try {
    return validateVolumeName(site, name);
  } catch (e) {
    throw new UsageError(`the default name of the restored volume, "${name}", cannot be used: ${(e as Error).message}`, ['Name the new volume with --to NAME.']);
  }
}

/**
 * Decompresses the image onto the device (its sha256 was checked by the
 * phase before; zstd checks each frame's own checksum as it reads, so an image
 * damaged since fails the write). `iflag=fullblock` keeps every O_DIRECT write
 * whole (a pipe returns short reads); conv=fsync: the exit status says the
 * data is on disk.
 */
const WRITE = ['set -o pipefail', 'dev=$1; shift', '"$@" | zstd -q -dc | dd of="$dev" bs=4M iflag=fullblock oflag=direct conv=fsync status=none'].join('\n');

/** The image is read where the backups are (`cat`, over ssh for a backup host) and decompressed on the metadata host. */
export function writeArgv(bsite: Pick<BackupSite, 'remote'>, image: string, device: string): string[] {
  return ['bash', '-c', WRITE, 'enssib-backup-restore', device, ...atDestination(bsite, ['cat', '--', image])];
}

/** The write of a backup onto `device`: the image decompressed, or the borg archive extracted (borg checks each chunk's MAC as it reads). */
export function restoreWriteArgv(bsite: Pick<BackupSite, 'remote' | 'destination' | 'borg'>, rec: BackupRecord, device: string): string[] {
  if (rec.method === 'borg') return extractArgv(borgRepoOf(bsite, 'restore'), rec.archive, device);
  return writeArgv(bsite, backupFiles(bsite.destination, rec.volume, rec.id).image, device);
}

/** Before anything is created or written: the image's sha256 against the record, or the borg archive found in the repository. */
function sourcePhase(site: VolumeSite, bsite: BackupSite, rec: BackupRecord): Phase {
  if (rec.method === 'image') return checksumPhase(site, bsite, backupFiles(bsite.destination, rec.volume, rec.id).image, rec.sha256, rec.id);
  const repo = borgRepoOf(bsite, 'restore');
  return probePhase({
    title: PHASE_ARCHIVE,
    hosts: [site.meta],
    probes: () => ({ info: probe(infoArgv(repo, rec.archive), (r: RunResult) => r) }),
    decide: (host, f) => {
      if (f && f.info.exitCode !== 0) {
        throw new OperationError(`${host}: backup ${rec.id}: its archive ${rec.archive} cannot be read in ${repo.path} (borg info exit code ${f.info.exitCode}${f.info.stderr.trim() ? `: ${f.info.stderr.trim().split('\n').pop()}` : ''})`, [
          'Nothing was changed. Choose another backup (enssib backup list), and check the repository with: enssib backup verify',
        ]);
      }
    },
  });
}

/** `sha256sum` of the image, compared with the record: a mismatch refuses before anything is created or written. */
function checksumPhase(site: VolumeSite, bsite: BackupSite, image: string, sha256: string, id: string): Phase {
  return probePhase({
    title: PHASE_CHECKSUM,
    hosts: [site.meta],
    probes: () => ({ sum: probe(atDestination(bsite, ['sha256sum', '--', image]), (r: RunResult) => r) }),
    decide: (host, f) => {
      if (!f) return;
      const got = f.sum.exitCode === 0 ? (/^([0-9a-f]{64})\s/.exec(f.sum.stdout)?.[1] ?? null) : null;
      if (got === null) throw new OperationError(`${host}: cannot read the backup image ${image}${f.sum.stderr.trim() ? `: ${f.sum.stderr.trim().split('\n').pop()}` : ''}`, ['Nothing was changed.']);
      if (got !== sha256) {
        throw new OperationError(`backup ${id} is damaged: the sha256 of ${image} is ${got}, the catalogue says ${sha256}`, ['Nothing was changed. Choose another backup (enssib backup list), and check them all with: enssib backup verify']);
      }
    },
  });
}

function writePhases(site: VolumeSite, bsite: BackupSite, req: RestoreRequest): Phase[] {
  const dev = lvPath(site.vg, req.target);
  const rec = req.record;
  const from = rec.method === 'borg' ? `archive ${rec.archive} of ${borgRepoOf(bsite, 'restore').path}` : backupFiles(bsite.destination, rec.volume, rec.id).image;
  return [
    {
      title: rec.method === 'borg' ? PHASE_WRITE_BORG : PHASE_WRITE,
      hosts: [site.meta],
      plan: () => [command(restoreWriteArgv(bsite, rec, dev), `${formatBytes(rec.sizeBytes)} from ${from}`, { timeoutMs: req.writeTimeoutS * 1000, interruptible: true })],
    },
    {
      title: PHASE_UNMARK,
      hosts: [site.meta],
      plan: () => [command(['lvchange', '--deltag', RESTORING_TAG, lvRef(site.vg, req.target)], `the restore of ${req.record.id} is complete`)],
    },
  ];
}

/** Into a new volume: the volume-create plan with the checksum before the LV and the write before the exports. */
export function restoreNewPlan(site: VolumeSite, bsite: BackupSite, req: RestoreRequest, deps: CreateDeps): Plan {
  const fill: CreateFill = {
    before: [volumeLockPhase(site, req.target, deps.owner, 0), sourcePhase(site, bsite, req.record)],
    write: writePhases(site, bsite, req),
    tags: [RESTORING_TAG],
    always: [volumeUnlockPhase(site, req.target, deps.owner)],
  };
  const plan = createPlan(
    site,
    { name: req.target, sizeBytes: req.record.sizeBytes, fs: req.fs, verifyOn: req.verifyOn, pv: false, keepOnFailure: req.keepOnFailure, lockWaitS: req.lockWaitS, fill, ...(req.workerConcurrency ? { workerConcurrency: req.workerConcurrency } : {}) },
    deps,
  );
  return { ...plan, title: `backup restore ${req.record.id} to ${req.target}` };
}

/** Over an existing volume (--force): refused while anything uses it; marked incomplete while it is written. */
export function restoreOverPlan(site: VolumeSite, bsite: BackupSite, req: RestoreRequest, owner: LockOwner): Plan {
  const iqn = iqnOf(site, req.target);
  const phases: Phase[] = [
    volumeLockPhase(site, req.target, owner, req.lockWaitS),
    readPhase(site, req.target, (host, f, state) => {
      if (!f || host !== site.meta) return;
      const lv = f.lv;
      if (!lv) throw new UsageError(`no volume "${req.target}" to restore over: no LV ${lvRef(site.vg, req.target)} on ${host}`, ['Without --force, the backup is restored into a new volume.']);
      const refusal = notEnssibs(site, host, lv, 'restore');
      if (refusal) throw refusal;
      const id = identityFromTags(lv.tags);
      if (id) state.values.set(IDENTITY, id);
      if (lv.sizeBytes < req.record.sizeBytes) {
        throw new UsageError(`volume "${req.target}" (${formatBytes(lv.sizeBytes)}) is smaller than backup ${req.record.id} (${formatBytes(req.record.sizeBytes)})`, [
          `Grow it first (enssib volume resize ${req.target} ${formatBytes(req.record.sizeBytes)}), or restore into a new volume (without --force).`,
        ]);
      }
    }),
    probePhase({
      title: PHASE_TARGET_SESSIONS,
      hosts: site.servers.map((s) => s.name),
      probes: () => ({ initiators: probe(targetSessionsArgv(site, req.target), parseTargetSessions) }),
      decide: (host, f) => {
        if (f && f.initiators.length > 0) {
          throw new OperationError(`volume "${req.target}" has iSCSI sessions on ${host}: ${f.initiators.join(', ')}`, ['Stop what uses it and log those initiators out first (the pods, then iscsiadm … --logout); nothing was changed.']);
        }
      },
    }),
  ];
  if (site.workers.length > 0) {
    phases.push(
      probePhase({
        title: PHASE_WORKERS,
        hosts: site.workers,
        ...(req.workerConcurrency ? { concurrency: req.workerConcurrency } : {}),
        probes: () => ({ sessions: workerProbes.sessions, maps: workerProbes.maps, dmOpen: workerProbes.dmOpen, mounts: workerProbes.mounts, nodes: workerProbes.nodes, initiator: workerProbes.initiator }),
        decide: (host, f) => {
          const h = workerHold(iqn, f);
          if (!h) return;
          if (h.mounts.length > 0) throw new OperationError(`volume "${req.target}" is mounted on ${host}`, [...h.mounts.map((m) => `${m.source} on ${m.target} (${m.fstype})`), 'Stop the pods that use it first; nothing was changed.']);
          if (h.portals.length > 0) throw new OperationError(`volume "${req.target}" is logged in on ${host} (${h.portals.join(', ')})`, [`Log it out there first: iscsiadm -m node -T ${iqn} --logout; nothing was changed.`]);
        },
      }),
    );
  }
  phases.push(sourcePhase(site, bsite, req.record), {
    title: PHASE_UNEXPORT,
    hosts: site.servers.map((s) => s.name),
    // Marked before the actions: an unexport that fails half-way is put back too.
    decide: (host, _f, state) => {
      const f = readFacts(site, state, host, req.target);
      if (!f || unexportActions(site, f, req.target).length > 0) state.values.set(UNEXPORTED, [...(state.values.get(UNEXPORTED) ?? []), host]);
    },
    plan: (host, _f, state) => unexportActions(site, readFacts(site, state, host, req.target), req.target),
  }, {
    title: PHASE_MARK,
    hosts: [site.meta],
    plan: () => [command(['lvchange', '--addtag', RESTORING_TAG, lvRef(site.vg, req.target)], 'until the write is complete (an interrupted restore stays marked)')],
  });
  phases.push(...writePhases(site, bsite, req));
  const reexport = probePhase({
    title: PHASE_REEXPORT,
    hosts: site.servers.map((s) => s.name),
    probes: () => storageProbes(site, { drbd: false }),
    plan: (host, raw, state) => {
      const identity = state.values.get(IDENTITY);
      const server = site.servers.find((s) => s.name === host);
      if (!state.values.get(UNEXPORTED)?.includes(host) || !server) return [];
      if (!identity) throw new OperationError(`${host}: the identity of ${req.target} was not read: its export is not put back`);
      return exportActions(site, server, raw ? storageFacts(site, host, req.target, raw) : null, { name: req.target, identity });
    },
  });
  return { title: `backup restore ${req.record.id} over ${req.target}`, mutating: true, phases, always: [reexport, volumeUnlockPhase(site, req.target, owner)], prefetch: [...site.servers.map((s) => s.name).filter((n) => n !== site.meta), ...site.workers] };
}

export interface RestoreOutcome {
  backup: string;
  volume: string;
  mode: 'new' | 'over';
  status: 'restored' | 'failed' | 'interrupted' | 'planned';
  /** The target is left holding part of the backup (marked RESTORING_TAG). */
  incomplete: boolean;
  /** --force: storage servers where the volume's export was taken offline and could not be put back. */
  unexported: string[];
  sizeBytes: number;
  /** How long the write took (ms), when it ran. */
  writeMs: number | null;
}

export function restoreOutcome(req: RestoreRequest, report: RunReport): RestoreOutcome {
  const write = report.phases.find((p) => p.title === PHASE_WRITE || p.title === PHASE_WRITE_BORG)?.hosts[0];
  const unmark = report.phases.find((p) => p.title === PHASE_UNMARK)?.hosts[0];
  const wrote = write !== undefined && (write.status === 'done' || write.status === 'failed' || write.partial === true);
  // A new volume that was written in part is undone (removed) unless kept: what is left with its mark is incomplete.
  const removed = !req.force && report.undo.some((u) => u.ok && u.actions.some((a) => /\blvremove\b/.test(a)));
  const reexport = report.phases.find((p) => p.title === PHASE_REEXPORT);
  const unexported = report.phases.find((p) => p.title === PHASE_UNEXPORT)?.hosts.filter((h) => h.status === 'done' || h.partial).map((h) => h.host) ?? [];
  const left = report.mode === 'apply' ? unexported.filter((h) => reexport?.hosts.find((x) => x.host === h)?.status !== 'done') : [];
  const done = report.mode === 'apply' && unmark?.status === 'done' && !report.stoppedAt && left.length === 0;
  return {
    backup: req.record.id,
    volume: req.target,
    mode: req.force ? 'over' : 'new',
    status: report.mode !== 'apply' ? 'planned' : done ? 'restored' : report.interrupted ? 'interrupted' : 'failed',
    incomplete: report.mode === 'apply' && wrote && unmark?.status !== 'done' && !removed,
    unexported: left,
    sizeBytes: req.record.sizeBytes,
    writeMs: write && write.status === 'done' ? write.durationMs : null,
  };
}
