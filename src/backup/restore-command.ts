import type { Context } from '../context.js';
import { execute } from '../engine/execute.js';
import type { RunReport } from '../engine/types.js';
import { ExitCode, InterruptedError, OperationError, UsageError } from '../errors.js';
import { newIdentity } from '../storage/identity.js';
import { lockOwner } from '../storage/lock.js';
import { fsFromTags, lvPath, lvmFailure, lvsArgv, parseLvs, type LvInfo } from '../storage/lvm.js';
import { quote } from '../remote/quote.js';
import { volumeLockError } from '../storage/volume-lock.js';
import { lockError, readError, releaseError, validateVolumeName, volumeSite, type VolumeSite } from '../storage/volume.js';
import type { Invocation } from '../usecase.js';
import { formatBytes } from '../validate.js';
import { validateBackupId } from './catalogue.js';
import { PHASE_REEXPORT, RESTORING_TAG, restoreName, restoreWriteArgv, restoreNewPlan, restoreOutcome, restoreOverPlan, type RestoreOutcome, type RestoreRequest } from './restore.js';
import { backupSite, type BackupSite } from './site.js';
import { readCatalogue } from './usecases.js';

/** `enssib backup restore <volume> <backup> [--to NAME | --force]`. */

const DEFAULT_LOCK_WAIT_S = 60;
const WRITE_TIMEOUT_S = 24 * 3600;

function lockWait(v: unknown): number {
  if (v === undefined) return DEFAULT_LOCK_WAIT_S;
  if (typeof v !== 'string' || !/^\d{1,5}$/.test(v)) throw new UsageError(`--lock-wait ${JSON.stringify(v)}: expected a number of seconds`);
  return Number(v);
}

/** The LVs of the volume group on the metadata host (read-only, before any plan: which plan applies). */
async function metaLvs(ctx: Context, site: VolumeSite): Promise<LvInfo[]> {
  const r = (await ctx.hosts().get(site.meta).probe([lvsArgv(site.vg)], { ...(ctx.signal ? { signal: ctx.signal } : {}) }))[0];
  if (!r || r.exitCode !== 0) throw new OperationError(`${site.meta}: cannot list the volumes: ${r ? lvmFailure(r, site.vg) : 'no answer'}`, ['Nothing was changed.']);
  return parseLvs(r.stdout).filter((l) => l.vg === site.vg);
}

export async function restoreCommand(ctx: Context, inv: Invocation): Promise<number> {
  const inventory = ctx.inventory();
  const site = volumeSite(inventory);
  const bsite = backupSite(inventory);
  const volume = validateVolumeName(site, inv.args[0]);
  const { id, volume: of } = validateBackupId(inv.args[1]);
  if (of !== volume) throw new UsageError(`backup ${id} is a backup of volume "${of}", not of "${volume}"`, [`See the backups of ${volume} with: enssib backup list ${volume}`]);
  const force = inv.opts.force === true;
  const target = inv.opts.to !== undefined ? validateVolumeName(site, inv.opts.to) : force ? volume : restoreName(site, id, volume);
  const lockWaitS = lockWait(inv.opts.lockWait);
  const keepOnFailure = inv.opts.keepOnFailure === true;
  if (force && keepOnFailure) throw new UsageError('--keep-on-failure is for a new volume; over an existing one (--force) nothing is undone anyway');

  const records = await readCatalogue(ctx, site, bsite);
  if (!records) {
    ctx.out.line(
      `Then, from the record of ${id} (its size and sha256), ${force ? `restore over volume ${target}` : `create volume ${target}`} and write the image on ${site.meta}. Its exact commands: run again with --dry-run=server (it reads the catalogue and the storage servers, and changes nothing).`,
    );
    return ExitCode.ok;
  }
  const record = records.find((r) => r.id === id);
  if (!record) throw new UsageError(`no backup ${id} in the catalogue`, [`See the backups of ${volume} with: enssib backup list ${volume}`]);

  const lvs = await metaLvs(ctx, site);
  const existing = lvs.find((l) => l.name === target);
  if (existing && !force) {
    throw new UsageError(`volume "${target}" exists (${site.vg}/${target} on ${site.meta}, ${formatBytes(existing.sizeBytes)}): nothing was changed`, [
      'Restore into a new volume: --to NAME; or over this one (refused while a worker uses it): --force',
    ]);
  }
  if (!existing && force) throw new UsageError(`no volume "${target}" to restore over (--force): no LV ${site.vg}/${target} on ${site.meta}`, ['Without --force, the backup is restored into a new volume.']);

  const req: RestoreRequest = {
    record,
    target,
    force,
    fs: fsFromTags(lvs.find((l) => l.name === volume)?.tags ?? []) ?? 'none',
    lockWaitS,
    writeTimeoutS: WRITE_TIMEOUT_S,
    keepOnFailure,
    verifyOn: site.workers[0] ?? null,
    workerConcurrency: Math.max(ctx.opts.concurrency, 32),
    ...(existing ? { targetBytes: existing.sizeBytes } : {}),
  };
  const owner = lockOwner(ctx.argv);
  if (force && ctx.opts.dryRun === false) {
    await ctx.prompt.confirm(`Overwrite all data of volume "${target}" (${formatBytes(existing?.sizeBytes ?? 0)}) with backup ${id} (${record.time})?`);
  }
  const plan = force ? restoreOverPlan(site, bsite, req, owner) : restoreNewPlan(site, bsite, req, { identity: newIdentity(), owner });
  const report = await execute(ctx, plan, { extra: (r) => ({ json: { restore: restoreOutcome(req, r) }, text: resultLines(site, bsite, req, restoreOutcome(req, r)) }) });
  const outcome = restoreOutcome(req, report);
  const apply = report.mode === 'apply';
  if (report.interrupted && apply) throw new InterruptedError(`backup restore interrupted during "${report.stoppedAt ?? 'the run'}"`, leftLines(site, req, outcome, report));
  const stop = lockError(report, site) ?? volumeLockError(report, site) ?? readError(report);
  if (stop) throw stop;
  if (report.stoppedAt) {
    const o = report.phases.find((p) => p.title === report.stoppedAt)?.hosts.find((h) => h.status === 'failed');
    if (o?.error?.exitCode === ExitCode.usage) throw new UsageError(o.error.message, o.error.details);
    throw new OperationError(`backup restore ${apply ? 'failed' : 'would stop'} at "${report.stoppedAt}": ${o?.error?.message ?? 'see above'}`, [...(o?.error?.details ?? []), ...(apply ? leftLines(site, req, outcome, report) : ['Nothing was changed.'])]);
  }
  if (apply && outcome.unexported.length > 0) throw new OperationError(`backup ${id} was written over ${target}, but its export was not put back on ${outcome.unexported.join(' and ')}`, leftLines(site, req, outcome, report));
  const release = releaseError(report, site);
  if (release) throw release;
  return report.exitCode;
}

function resultLines(site: VolumeSite, bsite: BackupSite, req: RestoreRequest, o: RestoreOutcome): string[] {
  if (o.status === 'planned') {
    // A server dry run shows the steps after the LV is created as "known after apply": the write is known now, and shown.
    const checked = req.record.method === 'image' ? `sha256 ${req.record.sha256} checked first` : `archive ${req.record.archive} found in the repository first`;
    return ['', `The write, on ${site.meta} (${formatBytes(req.record.sizeBytes)}, ${checked}):`, `  $ ${quote(restoreWriteArgv(bsite, req.record, lvPath(site.vg, req.target)))}`];
  }
  if (o.status !== 'restored') return [];
  const secs = o.writeMs === null ? '' : ` in ${(o.writeMs / 1000).toFixed(1)} s (${((o.sizeBytes / 1024 ** 2) / Math.max(o.writeMs / 1000, 0.001)).toFixed(0)} MiB/s)`;
  return [
    '',
    o.mode === 'new'
      ? `Backup ${o.backup} restored into the new volume ${o.volume} (${formatBytes(o.sizeBytes)})${secs}, exported on ${site.servers.map((s) => s.name).join(' and ')}.`
      : `Backup ${o.backup} written over volume ${o.volume} (${formatBytes(o.sizeBytes)})${secs}, exported again on ${site.servers.map((s) => s.name).join(' and ')}.`,
  ];
}

/** What a failed or interrupted restore left: the new volume undone, or a volume holding part of the backup. */
function leftLines(site: VolumeSite, req: RestoreRequest, o: RestoreOutcome, report: RunReport): string[] {
  if (report.undo.some((u) => !u.ok)) return ['Some undo steps failed; what is left where is listed above under "Undo".'];
  const offline =
    o.unexported.length > 0
      ? [
          `Volume ${req.target} is NOT exported on ${o.unexported.join(' and ')} (taken offline for the write; putting it back failed: see "${PHASE_REEXPORT}" above). The workers cannot reach it there.`,
          o.incomplete ? 'Running the restore again puts the export back at its end.' : `Export it again with: enssib volume create ${req.target} ${req.targetBytes !== undefined ? formatBytes(req.targetBytes) : 'SIZE (its size: enssib volume list)'} (it exports the existing volume with its identity, and changes nothing else).`,
        ]
      : [];
  if (o.incomplete) {
    return [
      `Volume ${req.target} holds PART of the backup: it is marked incomplete (LV tag ${RESTORING_TAG} on ${site.vg}/${req.target}); do not use it.`,
      req.force ? `Run the restore again to write it whole: enssib backup restore ${req.record.volume} ${req.record.id} --force${req.target !== req.record.volume ? ` --to ${req.target}` : ''}` : `Remove it with: enssib volume delete ${req.target}`,
      ...offline,
    ];
  }
  if (offline.length > 0) return offline;
  if (report.undo.length > 0) return [`What this run had created was undone: volume ${req.target} does not exist.`];
  return ['Nothing had been changed.'];
}
