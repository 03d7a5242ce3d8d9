import { probePhase, probedFacts, rawProbe, valueKey } from '../engine/probe.js';
import { describeAction } from '../engine/describe.js';
import type { Action, Finding, HostOutcome, ItemPlan, Phase, PhaseOutcome, Plan, RunReport, RunState } from '../engine/types.js';
import { OperationError, UsageError } from '../errors.js';
import type { RunResult } from '../remote/types.js';
import { exportActions, unexportActions } from '../storage/exports.js';
import { asIdentity, identityFromTags, type Identity } from '../storage/identity.js';
import { ISCSI_ERR, loginArgv, multipathArgv, parseMultipath, parseSessions, rescanArgv, sessionsArgv, targetPaths, verifyPaths, checkPathsArgv } from '../storage/initiator.js';
import type { LockOwner } from '../storage/lock.js';
import { volumeLockPhase, volumeUnlockPhase } from '../storage/volume-lock.js';
import { SNAPSHOT_FIELDS, lvActivateArgv, lvDeactivateArgv, lvPath, lvRef, lvmSize, lvremoveArgv, lvsArgv, parseSnapshots, roundToExtents, type SnapshotInfo } from '../storage/lvm.js';
import { notEnssibs } from '../storage/volume-delete.js';
import { command, iqnOf, storageFacts, storageProbes, type StorageFacts, type VolumeSite } from '../storage/volume.js';
import { formatBytes } from '../validate.js';
import { createWithProgressArgv, deleteArgv, initArgv, parseCreate, type BorgCreateStats, type BorgRepo } from './borg.js';
import { RECORD_FORMAT, backupFiles, backupTime, recordJson, writeRecordArgv, type BackupFiles, type BackupRecord } from './catalogue.js';
import type { QuiescePhases } from './quiesce.js';
import { atDestination, cowBytes, type BackupSite } from './site.js';

/**
 * `enssib backup snapshot <volume...>` with the `image` method: one plan whose
 * per-item work (`Plan.items`) is the volumes, each with its own phases and
 * its own cleanup, a few at once. On the metadata host M, for a volume also
 * exported by the other storage server O:
 *
 *   lock the volume → read both servers and the workers → remove what an
 *   earlier run left (its snapshot, a partial image) → take O's export offline
 *   and deactivate the LV there (while the snapshot exists, every write must go
 *   through M: DRBD applies O's writes beneath LVM, where the snapshot does not
 *   see them) → lvcreate --snapshot → zstd of the snapshot to a hidden
 *   temporary file on M, fsync → check that the snapshot is still valid and
 *   remove it (nothing but the copy happens while it exists) → sha256 of the
 *   file as written → rename, catalogue record.
 *
 * Always (success, failure, Ctrl-C): remove the partial image and the
 * snapshot, check that the snapshot is gone, then — only then — reactivate and
 * re-export on O, log in and rescan on the workers that had the volume, check
 * both paths there; release the volume's lock. A snapshot that could not be
 * removed keeps O's export offline (re-exporting would let writes bypass the
 * snapshot again): the report says what is left where and how to finish.
 */

export interface SnapshotRequest {
  volume: string;
  /** Backup id (the volume and the time the plan was made). */
  id: string;
  lockWaitS: number;
  /** "enssib 0.1.0 (commit …)" for the record. */
  tool: string;
  /** How long the copy may take before it is stopped (seconds). */
  copyTimeoutS: number;
  /** Hooks and filesystem freeze around the snapshot (quiesce.ts), when the volume's services declare them. */
  quiesce?: QuiescePhases;
}

export const PHASE_READ = 'read the volume, its snapshots and exports on the storage servers';
export const PHASE_WORKERS = 'read the sessions and multipath maps on the workers';
export const PHASE_LEFTOVERS = 'remove what an earlier backup of the volume left';
export const PHASE_OFFLINE = 'take the export offline on the other storage server';
export const PHASE_DEACTIVATE = 'deactivate the logical volume on the other storage server';
export const PHASE_SNAPSHOT = 'create the snapshot';
export const PHASE_COPY = 'copy the snapshot (zstd)';
export const PHASE_BORG_INIT = 'make the borg repository if there is none';
export const PHASE_COPY_BORG = 'copy the snapshot into the borg repository (borg create)';
export const PHASE_RELEASE = 'check the snapshot and remove it';
export const PHASE_CHECKSUM = 'checksum the copy (sha256)';
export const PHASE_KEEP = 'keep the copy';
export const PHASE_REMOVE = 'remove the snapshot and any partial copy';
export const PHASE_GONE = 'check that the snapshot is gone';
export const PHASE_REEXPORT = 'reactivate and re-export on the other storage server';
export const PHASE_RESCAN = 'log in and rescan on the workers that have the volume';
export const PHASE_PATHS = 'check both paths on the workers that have the volume';

/** The snapshot's LV name: recognisable, one per volume (the volume's lock makes it unique). */
export function snapshotName(volume: string): string {
  return `${volume}-enssib-snap`;
}

export interface SnapshotDecision {
  identity: Identity;
  originBytes: number;
  cowBytes: number;
  /** A snapshot of the volume left by an earlier run. */
  leftover: SnapshotInfo | null;
}

export const DECISION = valueKey<SnapshotDecision>('backup.decision');
/** The other servers whose export this run took (or was about to take) offline. */
export const OFFLINE = valueKey<string[]>('backup.offline');
/** Workers with a session to the volume's target when the run started. */
export const ATTACHED = valueKey<string[]>('backup.attached');
export const RECORD = valueKey<BackupRecord>('backup.record');
/** What the snapshot was when the copy ended: its size and how full its copy-on-write area was (it is removed right after). */
export const SNAPSHOT_READ = valueKey<{ sizeBytes: number; fillPercent: number }>('backup.snapshot-read');
/** What `borg create --json` said of the archive it made. */
export const CREATED = valueKey<BorgCreateStats>('backup.borg-created');
/** Set once the snapshot is known to be gone (removed, or never made): the other server may take writes again. */
export const GONE = valueKey<true>('backup.snapshot-gone');

/** The borg repository's folder in the destination (beside the volumes' catalogue folders). */
export const BORG_FOLDER = 'borg';

/** Placeholder identity a client dry run shows (nothing read). */
const DRY_IDENTITY = asIdentity('0'.repeat(32));

const readProbes = (site: VolumeSite) => ({ ...storageProbes(site), snaps: rawProbe(lvsArgv(site.vg, SNAPSHOT_FIELDS)) });

function snapshotsOf(r: RunResult, host: string): SnapshotInfo[] {
  if (r.exitCode !== 0) throw new OperationError(`${host}: cannot list the snapshots (lvs exit code ${r.exitCode})`, [r.stderr.trim()]);
  try {
    return parseSnapshots(r.stdout);
  } catch (e) {
    throw new OperationError(`${host}: ${(e as Error).message}`);
  }
}

/** Refuses what cannot be backed up; what the run needs from the metadata host's facts (pure). */
export function decideSnapshot(site: VolumeSite, bsite: BackupSite, volume: string, f: StorageFacts, snaps: SnapshotInfo[]): SnapshotDecision {
  if (bsite.borg && volume === BORG_FOLDER) {
    throw new UsageError(`volume "${volume}" cannot be backed up with the borg method: its catalogue folder would be the repository ${bsite.borg.path}`, ['Nothing was changed. Back it up with backup.method: image, or copy it to a volume of another name.']);
  }
  const lv = f.lv;
  if (!lv) throw new UsageError(`no volume "${volume}": no LV ${lvRef(site.vg, volume)} on ${site.meta}`, ['See the volumes with: enssib volume list']);
  const refusal = notEnssibs(site, site.meta, lv, 'backup');
  if (refusal) throw refusal;
  const identity = identityFromTags(lv.tags) as Identity;
  const snap = snapshotName(volume);
  const same = f.lvs.find((l) => l.name === snap);
  const leftover = snaps.find((s) => s.name === snap) ?? null;
  if (same && (!leftover || leftover.origin !== volume)) {
    throw new OperationError(`${site.meta}: an LV ${lvRef(site.vg, snap)} exists and is not a snapshot of ${volume}`, ['enssib names its snapshots so; it never removes an LV it did not make. Nothing was changed.']);
  }
  if (!f.vg) throw new OperationError(`${site.meta}: volume group ${site.vg} not found`);
  const cow = roundToExtents(cowBytes(bsite, lv.sizeBytes), f.vg.extentBytes);
  const free = f.vg.freeBytes + (leftover && same ? same.sizeBytes : 0);
  if (cow > free) {
    throw new OperationError(`volume group ${site.vg} on ${site.meta} has ${formatBytes(free)} free; the snapshot of ${volume} needs ${formatBytes(cow)}`, [
      'Nothing was changed. Free space in the volume group, or set a smaller backup.snapshotSize in the inventory (a snapshot that fills up fails its backup).',
    ]);
  }
  return { identity, originBytes: lv.sizeBytes, cowBytes: cow, leftover };
}

/**
 * The copy, on the metadata host: zstd of the snapshot piped into the sink
 * (`sinkArgv`, run where the backups are: the same host, or the backup host
 * over ssh — the data never passes through the admin's machine). The snapshot
 * is opened once (fd 7) and zstd reads that same open file, so its offset is
 * how far the copy got: the script prints it every second (bytes read), the
 * only thing on its stdout.
 */
const COPY = [
  'set -o pipefail',
  'src=$1; shift',
  'exec 7< "$src" || exit 1',
  '( zstd -q -1 -T0 -c <&7 | "$@" ) &',
  'c=$! n=0',
  // The loop starts no process (bash builtins only): its pause is a read that times out on a pipe nobody writes.
  'exec 8<> <(:)',
  'while kill -0 "$c" 2>/dev/null; do',
  '  if [ $((n % 5)) = 0 ]; then while read -r k v; do [ "$k" = pos: ] && { echo "$v"; break; }; done < "/proc/$$/fdinfo/7"; fi',
  '  n=$((n + 1)); read -r -t 0.2 -u 8 _',
  'done',
  'wait "$c"',
].join('\n');

/** A line of the copy's stdout: the bytes of the snapshot read so far, or null. */
export function parseCopyProgress(line: string): number | null {
  return /^\d{1,18}$/.test(line) ? Number(line) : null;
}

/** `sink`: the argv that receives the compressed stream on its stdin (see `sinkArgv`, `atDestination`). */
export function copyArgv(snapshotDev: string, sink: readonly string[]): string[] {
  return ['bash', '-c', COPY, 'enssib-backup-copy', snapshotDev, ...sink];
}

/**
 * Where the backups are: the stream into the hidden partial file, fsync, and
 * the times the stream started and ended (this host's clock) beside it. The
 * checksum is not taken in the stream: it would lengthen the snapshot's life
 * (see `checksumArgv`).
 */
const SINK = [
  'tmp=$1',
  'start=$(date +%s%3N)',
  'cat > "$tmp" || exit 1',
  'sync -- "$tmp" || exit 1',
  'printf "%s %s\\n" "$start" "$(date +%s%3N)" > "$tmp.time"',
].join('\n');

export function sinkArgv(partial: string): string[] {
  return ['bash', '-c', SINK, 'enssib-backup-sink', partial];
}

/**
 * The sha256 of the partial file as written, beside it: run where the backups
 * are, after the snapshot is removed (what `verify` recomputes later).
 */
export function checksumArgv(partial: string): string[] {
  return ['sh', '-c', 'sha256sum < "$1" > "$1.sha256"', 'enssib-backup-checksum', partial];
}

/** What the sink and the checksum left beside the partial file: its checksum, times and compressed size. */
const RESULT = ['tmp=$1', 'cat -- "$tmp.sha256" "$tmp.time" || exit 1', 'stat -c %s -- "$tmp"'].join('\n');

export function copyResultArgv(partial: string): string[] {
  return ['sh', '-c', RESULT, 'enssib-backup-result', partial];
}

export interface CopyResult {
  sha256: string;
  startMs: number;
  endMs: number;
  compressedBytes: number;
  sizeBytes: number;
}

/** `r`: what copyResultArgv printed; `sizeBytes`: the snapshot's size (`blockdev --getsize64`, read before its removal). */
export function parseCopyResult(r: RunResult, sizeBytes: number): CopyResult {
  if (r.exitCode !== 0) throw new OperationError(`the copy left no complete result (exit code ${r.exitCode})`, [r.stderr.trim()].filter(Boolean));
  const lines = r.stdout.split('\n').map((l) => l.trim());
  const sha = /^([0-9a-f]{64})\s/.exec(lines[0] ?? '')?.[1];
  const times = /^(\d+) (\d+)$/.exec(lines[1] ?? '');
  const compressed = /^\d+$/.test(lines[2] ?? '') ? Number(lines[2]) : NaN;
  if (!sha || !times || !Number.isSafeInteger(compressed)) throw new OperationError(`the copy's result cannot be read: ${JSON.stringify(r.stdout.slice(0, 200))}`);
  return { sha256: sha, startMs: Number(times[1]), endMs: Number(times[2]), compressedBytes: compressed, sizeBytes };
}

/**
 * Right after the copy, on the metadata host: the snapshot must still be
 * valid (one whose copy-on-write area filled up fails the backup: its copy is
 * not kept); its size and fill are kept for the record, then it is removed at
 * once, so that nothing but the copy happens while it exists. (The cleanup
 * removes it anyway when this phase is not reached.)
 */
function releasePhase(site: VolumeSite, volume: string, what: 'copy' | 'archive'): Phase {
  const snap = snapshotName(volume);
  return probePhase({
    title: PHASE_RELEASE,
    hosts: [site.meta],
    probes: () => ({ snaps: rawProbe(lvsArgv(site.vg, SNAPSHOT_FIELDS)), size: rawProbe(['blockdev', '--getsize64', lvPath(site.vg, snap)]) }),
    decide: (host, f, state) => {
      if (!f) return;
      const s = snapshotsOf(f.snaps, host).find((x) => x.name === snap);
      const problem = snapshotProblem(s, snap);
      if (problem) throw new OperationError(`${volume}: ${problem}; the ${what} is not kept`, ['Set a larger backup.snapshotSize in the inventory, or back up when the volume is written less.']);
      const size = f.size.exitCode === 0 && /^\d+$/.test(f.size.stdout.trim()) ? Number(f.size.stdout.trim()) : NaN;
      if (!Number.isSafeInteger(size)) throw new OperationError(`${volume}: cannot read the snapshot's size (blockdev exit code ${f.size.exitCode}); the ${what} is not kept`, [f.size.stderr.trim()].filter(Boolean));
      state.values.set(SNAPSHOT_READ, { sizeBytes: size, fillPercent: s?.usedPercent ?? 0 });
    },
    plan: () => [command(lvremoveArgv(site.vg, snap), 'the copy is complete: the snapshot is no longer needed')],
  });
}

/** Why the snapshot cannot be trusted after the copy, or null. */
export function snapshotProblem(snap: SnapshotInfo | undefined, name: string): string | null {
  if (!snap) return `the snapshot ${name} is gone`;
  if (snap.invalid) return `the snapshot ${name} became invalid: its copy-on-write area filled up during the copy`;
  if (snap.usedPercent !== null && snap.usedPercent >= 100) return `the snapshot ${name} is full (${snap.usedPercent}%)`;
  return null;
}

const WORKER_PROBES = () => ({ sessions: rawProbe(sessionsArgv()), multipath: rawProbe(multipathArgv()) });

/** Per-item work over the volumes, `concurrency` copies at once (the snapshots all live on the metadata host). */
export function snapshotPlan(site: VolumeSite, bsite: BackupSite, reqs: SnapshotRequest[], owner: LockOwner, concurrency: number): Plan {
  const others = site.servers.filter((s) => s.name !== site.meta);
  return {
    title: 'backup snapshot',
    mutating: true,
    phases: [],
    items: { title: 'back up each volume', concurrency, items: reqs.map((r) => snapshotItem(site, bsite, r, owner)) },
    prefetch: [site.meta, ...others.map((s) => s.name), ...site.workers],
  };
}

/** One volume's backup: its phases, and its cleanup that runs whatever happened to it or to the other volumes. */
export function snapshotItem(site: VolumeSite, bsite: BackupSite, req: SnapshotRequest, owner: LockOwner): ItemPlan {
  const { volume } = req;
  const iqn = iqnOf(site, volume);
  const snap = snapshotName(volume);
  const snapDev = lvPath(site.vg, snap);
  const files: BackupFiles = backupFiles(bsite.destination, volume, req.id);
  const others = site.servers.filter((s) => s.name !== site.meta);
  const decided = (state: RunState) => state.values.get(DECISION);
  const at = (argv: string[], opts?: { stdin: boolean }) => atDestination(bsite, argv, opts);
  const add = (state: RunState, key: typeof OFFLINE | typeof ATTACHED, host: string) => state.values.set(key, [...new Set([...(state.values.get(key) ?? []), host])]);

  const phases: Phase[] = [
    volumeLockPhase(site, volume, owner, req.lockWaitS),
    probePhase({
      title: PHASE_READ,
      hosts: site.servers.map((s) => s.name),
      probes: () => readProbes(site),
      decide: (host, raw, state) => {
        if (!raw) {
          if (host === site.meta) state.values.set(DECISION, { identity: DRY_IDENTITY, originBytes: 0, cowBytes: 0, leftover: null });
          return;
        }
        const f = storageFacts(site, host, volume, raw);
        if (f.drbdProblems.length > 0) throw new OperationError(`${host}: DRBD is not ready for a backup`, [...f.drbdProblems, 'Nothing was changed.']);
        if (f.vgProblem) throw new OperationError(`${host}: ${f.vgProblem}`);
        if (host === site.meta) state.values.set(DECISION, decideSnapshot(site, bsite, volume, f, snapshotsOf(raw.snaps, host)));
        // The VG's metadata is shared: the other server lists the metadata host's snapshots too, inactive there. Active there is the hazard.
        else if (snapshotsOf(raw.snaps, host).some((s) => s.origin === volume && s.active)) {
          throw new OperationError(`${host}: a snapshot of ${volume} is active on ${host}`, [`enssib snapshots only on the metadata host ${site.meta}; look at it with lvs ${site.vg} on ${host}. Nothing was changed.`]);
        }
      },
    }),
  ];
  if (site.workers.length > 0) {
    phases.push(
      probePhase({
        title: PHASE_WORKERS,
        hosts: site.workers,
        probes: WORKER_PROBES,
        decide: (host, f, state) => {
          if (!f) return;
          if (f.sessions.exitCode !== 0 && f.sessions.exitCode !== ISCSI_ERR.noObjsFound) throw new OperationError(`${host}: cannot read the iSCSI sessions (exit code ${f.sessions.exitCode})`);
          if (targetPaths(iqn, parseSessions(f.sessions), parseMultipath(f.multipath.stdout)).sessions.length > 0) add(state, ATTACHED, host);
        },
      }),
    );
  }
  phases.push(...(req.quiesce?.read ?? []));
  phases.push(
    {
      title: PHASE_LEFTOVERS,
      hosts: [site.meta],
      plan: (_h, _f, state) => {
        const d = decided(state);
        const actions: Action[] = [];
        if (!d || d.leftover || state.facts(PHASE_READ, site.meta) === undefined) {
          actions.push(command(lvremoveArgv(site.vg, snap), d?.leftover ? `the snapshot an earlier run left (${d.leftover.usedPercent ?? '?'}% used)` : 'if an earlier run left it'));
        }
        actions.push(
          command(at(['find', files.dir, '-maxdepth', '1', '-name', '.*.partial*', '-delete']), 'partial copies an earlier run left', { okCodes: [0, 1] }),
          command(at(['mkdir', '-p', '-m', '0700', '--', files.dir]), 'the volume\u2019s backup folder'),
        );
        return actions;
      },
    },
    ...(bsite.borg ? [borgInitPhase(site, bsite.borg)] : []),
    {
      title: PHASE_OFFLINE,
      hosts: others.map((s) => s.name),
      decide: (host, _f, state) => add(state, OFFLINE, host),
      plan: (host, _f, state) => unexportActions(site, serverFacts(site, state, host, volume), volume),
    },
    {
      title: PHASE_DEACTIVATE,
      hosts: others.map((s) => s.name),
      plan: (host, _f, state) => {
        const f = serverFacts(site, state, host, volume);
        return !f || f.lv?.active ? [command(lvDeactivateArgv(site.vg, volume), 'no write reaches the volume through this server')] : [];
      },
    },
    ...(req.quiesce?.before ?? []),
    {
      title: PHASE_SNAPSHOT,
      hosts: [site.meta],
      plan: (_h, _f, state) => {
        const cow = decided(state)?.cowBytes ?? 0;
        const size = cow > 0 ? lvmSize(cow) : 'percent' in bsite.snapshotSize ? `<${bsite.snapshotSize.percent}% of the volume>` : lvmSize(bsite.snapshotSize.bytes);
        return [command(['lvcreate', '--yes', '--snapshot', '--name', snap, '--size', size, lvRef(site.vg, volume)], 'copy-on-write snapshot')];
      },
    },
    ...(req.quiesce?.after ?? []),
    ...(bsite.borg
      ? borgCopyPhases(site, bsite, bsite.borg, req, files)
      : ([
    {
      title: PHASE_COPY,
      hosts: [site.meta],
      plan: (_h, _f, state) => [
        command(copyArgv(snapDev, at(sinkArgv(files.partial), { stdin: true })), `to ${files.partial}`, {
          timeoutMs: req.copyTimeoutS * 1000,
          interruptible: true,
          progress: { total: decided(state)?.originBytes ?? 0, parse: parseCopyProgress },
        }),
      ],
    },
    releasePhase(site, volume, 'copy'),
    {
      title: PHASE_CHECKSUM,
      hosts: [site.meta],
      plan: () => [command(at(checksumArgv(files.partial)), `of ${files.partial}, as written`, { timeoutMs: req.copyTimeoutS * 1000, interruptible: true })],
    },
    probePhase({
      title: PHASE_KEEP,
      hosts: [site.meta],
      probes: () => ({ result: rawProbe(at(copyResultArgv(files.partial))) }),
      decide: (_h, f, state) => {
        const read = state.values.get(SNAPSHOT_READ);
        if (!f || !read) return;
        const c = parseCopyResult(f.result, read.sizeBytes);
        const rec: BackupRecord = {
          format: RECORD_FORMAT,
          id: req.id,
          volume,
          method: 'image',
          time: new Date(c.startMs).toISOString(),
          sizeBytes: c.sizeBytes,
          compressedBytes: c.compressedBytes,
          sha256: c.sha256,
          durationMs: Math.max(0, c.endMs - c.startMs),
          snapshotFillPercent: read.fillPercent,
          file: files.image.slice(files.dir.length + 1),
          tool: req.tool,
        };
        state.values.set(RECORD, rec);
      },
      plan: (_h, _f, state) => {
        const rec = state.values.get(RECORD);
        return [
          command(at(['mv', '-T', '--', files.partial, files.image]), 'the complete copy under its name'),
          command(at(writeRecordArgv(files.record), { stdin: true }), 'catalogue record', { input: rec ? recordJson(rec) : '<the catalogue record: volume, time, sizes, sha256, duration, snapshot fill, tool>\n' }),
          command(at(['sync', '--', files.dir]), 'the folder on disk'),
        ];
      },
      undo: () => [command(at(['rm', '-f', '--', files.image, files.record]), 'no half-kept backup')],
      undoFailed: true,
    }),
        ] satisfies Phase[])),
  );

  const always: Phase[] = [
    ...(req.quiesce?.always ?? []),
    probePhase({
      title: PHASE_REMOVE,
      hosts: [site.meta],
      probes: () => ({ snaps: rawProbe(lvsArgv(site.vg, SNAPSHOT_FIELDS)) }),
      verify: (host, raw, state): Finding[] => {
        if (!decided(state)) return [];
        const s = snapshotsOf(raw[0] ?? { exitCode: 1, stdout: '', stderr: '', durationMs: 0 }, host).find((x) => x.name === snap && x.origin === volume);
        if (!s?.invalid) return [];
        return [
          {
            severity: 'warning',
            host,
            check: PHASE_REMOVE,
            found: `the snapshot ${snap} had become invalid: its copy-on-write area (${formatBytes(decided(state)?.cowBytes ?? 0)}) filled up`,
            why: 'reads of an invalid snapshot fail: this backup could not be made',
            fix: ['Set a larger backup.snapshotSize in the inventory (a share such as 50% or a size), or back up when the volume is written less.'],
          },
        ];
      },
      plan: (host, f, state) => {
        // Only a run that holds the volume's lock and read it touches its snapshot: another run's may be in use.
        if (!decided(state)) return [];
        const exists = !f || snapshotsOf(f.snaps, host).some((s) => s.name === snap && s.origin === volume);
        return [...(bsite.borg ? [] : [command(at(['rm', '-f', '--', files.partial, `${files.partial}.sha256`, `${files.partial}.time`]), 'no partial copy left')]), ...(exists ? [command(lvremoveArgv(site.vg, snap), 'the snapshot')] : [])];
      },
    }),
    probePhase({
      title: PHASE_GONE,
      hosts: [site.meta],
      probes: () => ({ snaps: rawProbe(lvsArgv(site.vg, SNAPSHOT_FIELDS)) }),
      decide: (host, f, state) => {
        if (!decided(state)) return;
        if (f && snapshotsOf(f.snaps, host).some((s) => s.name === snap && s.origin === volume)) {
          throw new OperationError(`${host}: the snapshot ${lvRef(site.vg, snap)} is still there`, ['Its removal failed: the other storage server stays offline for this volume (see the next phase).']);
        }
        state.values.set(GONE, true);
      },
    }),
  ];
  if (others.length > 0) {
    always.push(
      probePhase({
        title: PHASE_REEXPORT,
        hosts: others.map((s) => s.name),
        probes: () => storageProbes(site, { drbd: false }),
        decide: (host, _raw, state) => {
          const d = decided(state);
          // While the snapshot may exist, writes through this server would bypass it: stay offline, say what is left and how to finish.
          if (d && state.values.get(OFFLINE)?.includes(host) && state.values.get(GONE) !== true) throw stranded(site, volume, d.identity, state.values.get(ATTACHED) ?? []);
        },
        plan: (host, raw, state) => {
          if (!state.values.get(OFFLINE)?.includes(host)) return [];
          const d = decided(state);
          if (!d) return [];
          const f = raw ? storageFacts(site, host, volume, raw) : null;
          const server = site.servers.find((s) => s.name === host);
          if (!server) return [];
          return [...(!f || !f.lv?.active ? [command(lvActivateArgv(site.vg, volume), 'writes may come through this server again')] : []), ...exportActions(site, server, f, { name: volume, identity: d.identity })];
        },
      }),
    );
  }
  if (site.workers.length > 0 && others.length > 0) {
    // Workers are rescanned and checked only when this run took a path offline (a client dry run lists them all).
    const attached = (state: RunState, host: string) => (state.values.get(OFFLINE) ?? []).length > 0 && (state.facts(PHASE_WORKERS, host) === undefined || (state.values.get(ATTACHED) ?? []).includes(host));
    always.push(
      {
        title: PHASE_RESCAN,
        hosts: site.workers,
        decide: (host, _f, state) => {
          if (attached(state, host) && state.values.get(GONE) !== true) throw new OperationError(`${host}: not rescanned: ${volume} stays on one path while its snapshot may exist (see "${PHASE_REEXPORT}")`);
        },
        plan: (host, _f, state) => {
          if (!attached(state, host)) return [];
          return [
            ...others.map((s) => command(loginArgv(iqn, s.portal), `the path through ${s.name}`, { okCodes: [0, ISCSI_ERR.sessExists] })),
            ...others.map((s) => command(rescanArgv(iqn, s.portal), `its disk through ${s.name}`, { okCodes: [0, ISCSI_ERR.noObjsFound] })),
            command(checkPathsArgv(iqn, [], 60, false), 'until every disk of the target is an active path again (up to 60 s; no login, no logout)', { timeoutMs: 90_000 }),
          ];
        },
      },
      probePhase({
        title: PHASE_PATHS,
        hosts: site.workers,
        probes: WORKER_PROBES,
        verify: (host, _raw, state): Finding[] => {
          if (!attached(state, host) || state.values.get(GONE) !== true) return [];
          const f = probedFacts(state, PHASE_PATHS, host, WORKER_PROBES());
          if (!f) return [];
          const v = verifyPaths(iqn, site.servers.map((s) => s.portal), parseSessions(f.sessions), parseMultipath(f.multipath.stdout));
          if (v.ok) return [{ severity: 'info', host, check: PHASE_PATHS, found: `${volume}: map ${v.map.wwid} with ${site.servers.length} active paths`, why: 'both storage servers serve the volume again', fix: [] }];
          return [
            {
              severity: 'error',
              host,
              check: PHASE_PATHS,
              found: `${volume}: ${v.problems.join('; ')}`,
              why: 'the volume runs on one path: a failure of the remaining storage server stops its I/O',
              fix: [...others.map((s) => `iscsiadm -m node -T ${iqn} -p ${s.portal} --login; iscsiadm -m node -T ${iqn} -p ${s.portal} --rescan`), 'then check with: multipath -ll'],
            },
          ];
        },
      }),
    );
  }
  always.push(volumeUnlockPhase(site, volume, owner));
  return { name: volume, phases, always };
}

/** `borg init` where `borg info` finds no repository (borg refuses a folder that is not empty: enssib never takes one over). */
function borgInitPhase(site: VolumeSite, repo: BorgRepo): Phase {
  return { title: PHASE_BORG_INIT, hosts: [site.meta], plan: () => [command(initArgv(repo), `${repo.path}, encrypted (repokey-blake2), passphrase read by borg from ${repo.passphraseFile}`)] };
}

/** The borg create of the snapshot, as the copy phase runs it (the archive's time is the backup id's), printing how far it read. */
export function borgCopyArgv(repo: BorgRepo, id: string, snapshotDev: string): string[] {
  return createWithProgressArgv(repo, id, snapshotDev, backupTime(id));
}

/**
 * The `borg` method's copy and keep, on the metadata host: `borg create
 * --read-special` of the snapshot device into the repository (over ssh for a
 * backup host: borg's own), its `--json` stats kept; then, only if the
 * snapshot stayed valid, the catalogue record. An archive whose backup is not
 * kept (the snapshot filled up, a later failure, Ctrl-C) is deleted again.
 */
function borgCopyPhases(site: VolumeSite, bsite: BackupSite, repo: BorgRepo, req: SnapshotRequest, files: BackupFiles): Phase[] {
  const { volume } = req;
  const snap = snapshotName(volume);
  const snapDev = lvPath(site.vg, snap);
  const at = (argv: string[], opts?: { stdin: boolean }) => atDestination(bsite, argv, opts);
  return [
    {
      title: PHASE_COPY_BORG,
      hosts: [site.meta],
      plan: (_h, _f, state) => [
        command(borgCopyArgv(repo, req.id, snapDev), `archive ${req.id} in ${repo.path}`, {
          timeoutMs: req.copyTimeoutS * 1000,
          interruptible: true,
          progress: { total: state.values.get(DECISION)?.originBytes ?? 0, parse: parseCopyProgress },
          result: (r) => state.values.set(CREATED, parseCreate(r)),
        }),
      ],
      undo: () => [command(deleteArgv(repo, req.id), 'no archive of a backup that is not kept')],
    },
    releasePhase(site, volume, 'archive'),
    {
      title: PHASE_KEEP,
      hosts: [site.meta],
      decide: (_h, _f, state) => {
        const read = state.values.get(SNAPSHOT_READ);
        if (!read) return;
        const c = state.values.get(CREATED);
        if (!c) throw new OperationError(`${volume}: borg create said nothing of its archive; the archive is not kept`);
        state.values.set(RECORD, {
          format: RECORD_FORMAT,
          id: req.id,
          volume,
          method: 'borg',
          time: backupTime(req.id).toISOString(),
          sizeBytes: read.sizeBytes,
          compressedBytes: c.compressedBytes,
          deduplicatedBytes: c.deduplicatedBytes,
          durationMs: c.durationMs,
          snapshotFillPercent: read.fillPercent,
          archive: c.archive,
          tool: req.tool,
        });
      },
      plan: (_h, _f, state) => {
        const rec = state.values.get(RECORD);
        return [
          command(at(writeRecordArgv(files.record), { stdin: true }), 'catalogue record', { input: rec ? recordJson(rec) : '<the catalogue record: volume, time, size, compressed and deduplicated sizes, duration, snapshot fill, archive, tool>\n' }),
          command(at(['sync', '--', files.dir]), 'the folder on disk'),
        ];
      },
      // The copy phase's undo then deletes the archive.
      undo: () => [command(at(['rm', '-f', '--', files.record]), 'no record of a backup that is not kept')],
      undoFailed: true,
    },
  ];
}

/**
 * The other server's export of a volume left offline because its snapshot may
 * still exist: what is left where, and the commands that finish by hand.
 */
export function stranded(site: VolumeSite, volume: string, identity: Identity, attached: readonly string[]): OperationError {
  const snap = lvRef(site.vg, snapshotName(volume));
  const iqn = iqnOf(site, volume);
  const others = site.servers.filter((s) => s.name !== site.meta);
  const line = (a: Action) => describeAction(null, a);
  return new OperationError(
    `not reactivated nor re-exported on ${others.map((s) => s.name).join(', ')}: the snapshot ${snap} may still exist on ${site.meta} (its removal failed or could not be checked), and writes through ${others.length > 1 ? 'those servers' : 'that server'} would bypass it`,
    [
      `Left: on ${site.meta} the snapshot ${snap}; on ${others.map((s) => s.name).join(', ')} the LV ${lvRef(site.vg, volume)} inactive and its export offline; ${attached.length > 0 ? `${attached.join(', ')} reach${attached.length > 1 ? '' : 'es'} ${volume} through ${site.meta} only` : `the workers reach ${volume} through ${site.meta} only`}.`,
      `To finish by hand, in this order: on ${site.meta}: ${line(command(lvremoveArgv(site.vg, snapshotName(volume)), ''))}, then check that lvs ${snap} finds nothing;`,
      ...others.flatMap((s) => [`then on ${s.name}: ${line(command(lvActivateArgv(site.vg, volume), ''))}`, ...exportActions(site, s, null, { name: volume, identity }).map((a) => `  ${line(a)}`)]),
      ...(attached.length > 0 ? [`then on ${attached.join(', ')}: ${others.map((s) => `${line(command(loginArgv(iqn, s.portal), ''))}; ${line(command(rescanArgv(iqn, s.portal), ''))}`).join('; ')}; multipath -ll`] : []),
      `Or, once the snapshot is removed, run enssib backup snapshot ${volume} again: it puts the export back at its end.`,
    ],
  );
}

/** A storage server's facts read at the start of the run (null in a client dry run). */
function serverFacts(site: VolumeSite, state: RunState, host: string, volume: string): StorageFacts | null {
  const f = probedFacts(state, PHASE_READ, host, readProbes(site));
  return f ? storageFacts(site, host, volume, f) : null;
}

export interface SnapshotOutcome {
  volume: string;
  id: string;
  status: 'ok' | 'failed' | 'interrupted' | 'skipped' | 'planned';
  record: BackupRecord | null;
  /** Where the volume's run stopped, and why. */
  error: string | null;
  /** How long the snapshot existed (ms): the phases from creating it to removing it; null when none was made. */
  snapshotLifetimeMs: number | null;
  /** How long the other server's export was offline (ms): the phases from taking it offline to re-exporting; null when it was not. */
  singlePathMs: number | null;
  /** The other server's export was left offline because the snapshot may still exist (see `stranded`). */
  stranded: boolean;
  /** Both paths checked on every worker that had the volume. */
  pathsOk: boolean;
}

/** The time spent by an item's phases from `from` to `to` (inclusive), when `from` did something; null otherwise. */
function span(phases: readonly PhaseOutcome[], from: string, to: string): number | null {
  const titles = phases.map((p) => p.title);
  const a = titles.indexOf(from);
  const b = titles.indexOf(to);
  if (a < 0 || !phases[a]?.hosts.some((h) => h.status === 'done' || h.partial)) return null;
  return phases.slice(a, b >= a ? b + 1 : undefined).reduce((sum, p) => sum + Math.max(0, ...p.hosts.map((h) => h.durationMs)), 0);
}

/** "host: message", once (most messages already start with their host). */
const withHost = (host: string, message: string) => (message.startsWith(`${host}: `) ? message : `${host}: ${message}`);

/**
 * Why a phase failed on a host, in one line: its message, and for a command
 * that failed, the last line it wrote on stderr (where the cause is: "No space
 * left on device", "Read error"), unless the message says it already.
 */
function failureText(h: HostOutcome): string {
  const e = h.error;
  const message = withHost(h.host, e?.message ?? 'failed');
  const last = e?.remoteExitCode !== undefined ? (e.details.at(-1)?.trim() ?? '') : '';
  return last && !message.includes(last) ? `${message}: ${last.slice(0, 300)}` : message;
}

/** One volume's outcome, from the run's report (its item, its phases). */
export function snapshotOutcome(req: SnapshotRequest, report: RunReport): SnapshotOutcome {
  const phases = report.phases.filter((p) => p.item === req.volume);
  const item = report.items?.find((i) => i.item === req.volume);
  const keep = phases.find((p) => p.title === PHASE_KEEP)?.hosts[0];
  const ok = report.mode === 'apply' && item?.status === 'done' && keep?.status === 'done';
  const reexport = phases.find((p) => p.title === PHASE_REEXPORT);
  const stranded = reexport?.hosts.some((h) => h.status === 'failed' && /^not reactivated nor re-exported/.test(h.error?.message ?? '')) ?? false;
  const failed = phases.flatMap((p) => p.hosts.filter((h) => h.status === 'failed').map((h) => ({ p, h })))[0];
  // A copy that failed reading a snapshot whose copy-on-write area filled up: that is the cause (the removal found it), not the read error.
  const invalid = phases.find((p) => p.title === PHASE_REMOVE)?.hosts.flatMap((h) => (h.findings ?? []).filter((f) => f.check === PHASE_REMOVE))[0];
  const paths = phases.find((p) => p.title === PHASE_PATHS);
  const record = report.itemStates?.get(req.volume)?.values.get(RECORD) ?? null;
  return {
    volume: req.volume,
    id: req.id,
    status: report.mode !== 'apply' ? 'planned' : item?.status === 'skipped' ? 'skipped' : item?.status === 'interrupted' ? 'interrupted' : ok ? 'ok' : 'failed',
    record: ok ? record : null,
    error: failed ? `${failed.p.title}: ${failed.p.title === PHASE_COPY && invalid ? withHost(invalid.host, invalid.found) : failureText(failed.h)}` : item?.error ? item.error.message : null,
    // The snapshot ends where it was removed: right after the copy, or in the cleanup.
    snapshotLifetimeMs: span(phases, PHASE_SNAPSHOT, phases.find((p) => p.title === PHASE_RELEASE)?.hosts.some((h) => h.status === 'done') ? PHASE_RELEASE : PHASE_REMOVE),
    singlePathMs: stranded ? null : span(phases, PHASE_OFFLINE, PHASE_REEXPORT),
    stranded,
    pathsOk: !stranded && (!paths || paths.hosts.every((h) => h.status !== 'failed')),
  };
}
