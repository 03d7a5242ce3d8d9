import { existsSync, realpathSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type { Context } from '../context.js';
import { runnerContext } from '../engine/execute.js';
import { journalEntry, writeJournal } from '../engine/journal.js';
import { runPlan } from '../engine/runner.js';
import { valueKey } from '../engine/probe.js';
import type { Phase, Plan, RunMode, RunReport } from '../engine/types.js';
import { ExitCode, InterruptedError, OperationError, UsageError } from '../errors.js';
import { LOCK_HELD_EXIT, heldBy, lockOwner, placeholderOwner } from '../storage/lock.js';
import { VOLUME_TAG } from '../storage/identity.js';
import { lvsArgv, parseLvs } from '../storage/lvm.js';
import { runHook } from '../remote/hook.js';
import { LocalHost, localPool } from '../remote/local.js';
import { kubeconfigPath } from '../k8s/config.js';
import { servicesRoot } from '../site/folder.js';
import { quote } from '../remote/quote.js';
import { command, validateVolumeName, volumeSite, type VolumeSite } from '../storage/volume.js';
import { formatDuration } from '../ui/progress.js';
import { planLines, reportJson, summaryLines } from '../ui/report.js';
import type { Invocation } from '../usecase.js';
import { formatBytes } from '../validate.js';
import { archiveNames, checkArgv, compactArgv, listArgv, parsePruneList, pruneArgv, type BorgRepo } from './borg.js';
import { addedBytes, backupFiles, backupId, listRecordsArgv, parseRecords, validateBackupId, type BackupRecord } from './catalogue.js';
import { applyRetention, retentionIsEmpty } from './retention.js';
import { installPlan, scheduleUnits, validateAt } from './schedule.js';
import { BACKUP_HOST_UNREACHABLE, atDestination, backupSite, borgRepoOf, destinationLabel, type BackupSite } from './site.js';
import { PHASE_VOLUME_LOCK, volumeLockFile } from '../storage/volume-lock.js';
import { findQuiesce, quiescePhases, type VolumeQuiesce } from './quiesce.js';
import { snapshotOutcome, snapshotPlan, type SnapshotOutcome, type SnapshotRequest } from './snapshot.js';

/** The `enssib backup …` commands. */

const COPY_TIMEOUT_S = 24 * 3600;

function tool(): string {
  const v = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  return `enssib ${v}`;
}

function sites(ctx: Context): { site: VolumeSite; bsite: BackupSite } {
  const inv = ctx.inventory();
  return { site: volumeSite(inv), bsite: backupSite(inv) };
}

const mode = (ctx: Context): RunMode => (ctx.opts.dryRun === false ? 'apply' : ctx.opts.dryRun);

function run(ctx: Context, plan: Plan, as = mode(ctx)): Promise<RunReport> {
  return runPlan(plan, { mode: as, concurrency: ctx.opts.concurrency, hosts: ctx.hosts(), ...runnerContext(ctx) });
}

// ---------------------------------------------------------------- snapshot

/** The enssib volumes on the metadata host (LVs with enssib's tag), read-only. */
async function allVolumes(ctx: Context, site: VolumeSite): Promise<string[]> {
  const r = await ctx.hosts().get(site.meta).probe([lvsArgv(site.vg)], { ...(ctx.signal ? { signal: ctx.signal } : {}) });
  const res = r[0];
  if (!res || res.exitCode !== 0) throw new OperationError(`${site.meta}: cannot list the volumes (lvs exit code ${res?.exitCode ?? '?'})`, [res?.stderr.trim() ?? '']);
  return parseLvs(res.stdout)
    .filter((l) => l.vg === site.vg && l.tags.includes(VOLUME_TAG))
    .map((l) => l.name)
    .sort();
}

function snapshotTargets(site: VolumeSite, inv: Invocation): string[] | 'all' {
  const raw = (inv.args[0] ?? []) as string[] | string;
  const names = Array.isArray(raw) ? raw : [raw];
  const all = inv.opts.all === true;
  if (all && names.length > 0) throw new UsageError('give volume names or --all, not both');
  if (!all && names.length === 0) throw new UsageError('which volumes? Give their names, or --all', ['enssib backup snapshot mail ldap', 'enssib backup snapshot --all']);
  if (all) return 'all';
  const valid = names.map((n) => validateVolumeName(site, n));
  const dup = valid.find((n, i) => valid.indexOf(n) !== i);
  if (dup) throw new UsageError(`volume "${dup}" is named twice`);
  return valid;
}

function lockWait(opts: Record<string, unknown>): number {
  const v = opts.lockWait;
  if (v === undefined) return 0;
  if (typeof v !== 'string' || !/^\d{1,5}$/.test(v)) throw new UsageError(`--lock-wait ${JSON.stringify(v)}: expected a number of seconds`);
  return Number(v);
}

/** Copies at once: one stream per storage server by default (the snapshots all live on the metadata host: 1), `--concurrency` to change. */
export const MAX_BACKUP_CONCURRENCY = 16;

export function backupConcurrency(opts: Pick<Context['opts'], 'concurrency' | 'concurrencyGiven'>, bsite?: Pick<BackupSite, 'borg'>): number {
  if (!opts.concurrencyGiven) return 1;
  const n = opts.concurrency;
  if (bsite?.borg && n !== 1) {
    // A second create would hold its snapshot, and the other server's export offline, while it waits for the repository's lock.
    throw new UsageError(`--concurrency ${n}: with backup.method borg, volumes are backed up one at a time`, ['borg writes one archive at a time into its repository (it holds the repository\u2019s lock for the whole create).']);
  }
  if (!Number.isInteger(n) || n < 1 || n > MAX_BACKUP_CONCURRENCY) {
    throw new UsageError(`--concurrency ${n}: backup snapshot copies 1 to ${MAX_BACKUP_CONCURRENCY} volumes at once`, ['Every copy reads the metadata host\u2019s disks: more than a few at once rarely goes faster.']);
  }
  return n;
}

/** Why a volume's run stopped at its lock, in words (another backup, or a resize/delete of it). */
function lockMessage(report: RunReport, site: VolumeSite, volume: string): string | null {
  const o = report.phases.find((p) => p.item === volume && p.title === PHASE_VOLUME_LOCK)?.hosts[0];
  if (o?.status !== 'failed' || o.error?.remoteExitCode !== LOCK_HELD_EXIT) return null;
  return `volume ${volume} is locked (${volumeLockFile(site, volume)} on ${site.meta}) by ${heldBy(o.error.details.join('\n')) ?? 'another enssib command'}`;
}

/**
 * Exit codes: 0 every volume backed up with both paths back; 3 (partial) some
 * volumes failed or one has a worker on one path; 1 every volume failed;
 * 130, 143, 129 interrupted (Ctrl-C, SIGTERM, SIGHUP).
 */
export async function snapshotCommand(ctx: Context, inv: Invocation): Promise<number> {
  const { site, bsite } = sites(ctx);
  const wanted = snapshotTargets(site, inv);
  const lockWaitS = lockWait(inv.opts);
  const concurrency = backupConcurrency(ctx.opts, bsite);
  const volumes = wanted !== 'all' ? wanted : ctx.opts.dryRun === 'client' ? ['VOLUME'] : await allVolumes(ctx, site);
  if (wanted === 'all' && ctx.opts.dryRun === 'client') ctx.out.note(`--all: the volumes are read on ${site.meta} when the command runs (${lvsArgv(site.vg).join(' ')}); the plan of each is:`);
  if (volumes.length === 0) {
    ctx.out.result(() => ({ backups: [] }), () => [`No volumes on ${site.meta}.`]);
    return ExitCode.ok;
  }
  const now = new Date();
  const quiesce = volumeQuiesce(ctx, site, volumes);
  const reqs: SnapshotRequest[] = volumes.map((volume) => {
    const id = backupId(volume, now);
    return { volume, id, lockWaitS, tool: tool(), copyTimeoutS: COPY_TIMEOUT_S, quiesce: quiescePhases(site, volume, quiesce.get(volume), { ...hookContext(ctx), backupId: id, run: runHook }) };
  });
  const owner = ctx.opts.dryRun === 'client' ? placeholderOwner(ctx.argv) : lockOwner(ctx.argv);
  const report = await run(ctx, snapshotPlan(site, bsite, reqs, owner, concurrency));
  const outcomes = reqs.map((r) => {
    const o = snapshotOutcome(r, report);
    const locked = lockMessage(report, site, r.volume);
    return locked ? { ...o, error: locked } : o;
  });
  const verdict = snapshotSummary(outcomes, bsite);
  if (report.mode === 'apply') writeJournal(ctx, { ...journalEntry(report), summary: verdict.line });
  ctx.out.result(
    () => ({ backups: outcomes, ...(report.mode === 'apply' ? { summary: verdict.line, longSinglePath: verdict.long } : {}), run: reportJson(report) }),
    () => (report.mode === 'apply' ? [...summaryLines(report, ctx.out), '', ...snapshotTable(ctx, outcomes), ...verdict.warnings, verdict.line] : planLines(report, ctx.out)),
  );
  if (report.mode !== 'apply') return ExitCode.ok;
  if (report.interrupted) throw new InterruptedError(`backup interrupted: ${verdict.line}`, ['The snapshots of the volumes in progress were removed and their exports restored (see the summary above).']);
  return verdict.exitCode;
}

/** What the services declare to quiesce each volume (hooks, freeze): read from their folders beside the inventory. */
function volumeQuiesce(ctx: Context, site: VolumeSite, volumes: readonly string[]): Map<string, VolumeQuiesce> {
  const inv = ctx.inventory();
  return findQuiesce(servicesRoot(inv.root), site, inv.data.kubernetes.namespace ?? 'default', volumes);
}

function hookContext(ctx: Context): { inventory: string; kubeconfig: string | null } {
  const kc = kubeconfigPath(ctx).path;
  return { inventory: resolve(ctx.inventory().file), kubeconfig: existsSync(kc) ? kc : null };
}

export interface SnapshotVerdict {
  /** One line for a person and the journal: "backup snapshot: 2 of 3 volumes backed up; failed: mail (…)". */
  line: string;
  warnings: string[];
  /** Volumes that ran on one path longer than backup.maxSinglePath. */
  long: string[];
  exitCode: number;
}

/** The end of a backup run: the one-line summary, warnings, and the exit code (0, 3 partial, 1 every volume failed). */
export function snapshotSummary(outcomes: readonly SnapshotOutcome[], bsite: Pick<BackupSite, 'maxSinglePathMs'>): SnapshotVerdict {
  const good = outcomes.filter((o) => o.status === 'ok' && o.pathsOk);
  const bad = outcomes.filter((o) => !(o.status === 'ok' && o.pathsOk));
  const long = outcomes.filter((o) => o.singlePathMs !== null && o.singlePathMs > bsite.maxSinglePathMs);
  const why = (o: SnapshotOutcome) => (o.status === 'ok' ? 'backed up, but a worker does not have both paths again' : o.stranded ? 'its snapshot could not be removed: ONE PATH left' : o.status === 'skipped' ? 'not started' : o.status);
  const line = [`backup snapshot: ${good.length} of ${outcomes.length} volume${outcomes.length > 1 ? 's' : ''} backed up`, ...(bad.length > 0 ? [`failed: ${bad.map((o) => `${o.volume} (${why(o)})`).join(', ')}`] : []), ...(long.length > 0 ? [`on one path longer than ${formatDuration(bsite.maxSinglePathMs)}: ${long.map((o) => o.volume).join(', ')}`] : [])].join('; ');
  const warnings = long.map((o) => `warning: ${o.volume} ran on one path for ${formatDuration(o.singlePathMs ?? 0)}, longer than backup.maxSinglePath (${formatDuration(bsite.maxSinglePathMs)}): a failure of the server left in that time stops its I/O. Back it up at a quieter time, or raise backup.maxSinglePath.`);
  const exitCode = bad.length === 0 ? ExitCode.ok : good.length === 0 ? ExitCode.failed : ExitCode.partial;
  return { line, warnings, long: long.map((o) => o.volume), exitCode };
}

const secs = (ms: number | null) => (ms === null ? '-' : formatDuration(ms));

function snapshotTable(ctx: Context, outcomes: SnapshotOutcome[]): string[] {
  const rows = outcomes.map((o) => {
    const r = o.record;
    return [
      o.volume,
      o.status === 'ok' ? (o.pathsOk ? 'ok' : 'ok, ONE PATH') : o.stranded ? 'FAILED, ONE PATH' : o.status.toUpperCase(),
      r ? r.id : '-',
      r ? formatBytes(r.sizeBytes) : '-',
      r ? formatBytes(r.compressedBytes) : '-',
      r ? formatBytes(addedBytes(r)) : '-',
      r ? secs(r.durationMs) : '-',
      r ? `${r.snapshotFillPercent.toFixed(1)}%` : '-',
      secs(o.snapshotLifetimeMs),
      o.stranded ? 'STILL' : secs(o.singlePathMs),
    ];
  });
  const lines = ctx.out.table(['VOLUME', 'RESULT', 'BACKUP', 'SIZE', 'COMPRESSED', 'ADDED', 'COPY', 'SNAPSHOT USED', 'SNAPSHOT LIFETIME', 'ONE PATH FOR'], rows);
  for (const o of outcomes) if (o.error && o.status !== 'ok') lines.push(`${o.volume}: ${o.error}`);
  return lines;
}

// ---------------------------------------------------------------- catalogue

const READ_TITLE = 'read the backup catalogue';

function readPlan(site: VolumeSite, bsite: BackupSite): Plan {
  return { title: 'backup list', mutating: false, phases: [{ title: READ_TITLE, hosts: [site.meta], checks: () => [atDestination(bsite, listRecordsArgv(bsite.destination))] }] };
}

/** The catalogue, oldest first; null in a client dry run (the read is printed instead). */
export async function readCatalogue(ctx: Context, site: VolumeSite, bsite: BackupSite): Promise<BackupRecord[] | null> {
  const plan = readPlan(site, bsite);
  if (ctx.opts.dryRun === 'client') {
    for (const l of planLines(await run(ctx, plan, 'client'), ctx.out)) ctx.out.line(l);
    return null;
  }
  const report = await run(ctx, plan, 'server');
  const o = report.phases[0]?.hosts[0];
  const facts = report.state.facts(READ_TITLE, site.meta);
  if (!facts?.[0] || o?.status === 'failed') {
    if (report.interrupted) throw new InterruptedError('interrupted while reading the backup catalogue');
    throw new OperationError(`cannot read the backup catalogue on ${site.meta}: ${o?.error?.message ?? 'no answer'}`, o?.error?.details ?? []);
  }
  if (bsite.remote && facts[0].exitCode === BACKUP_HOST_UNREACHABLE) {
    throw new OperationError(`cannot read the backup catalogue: ssh from ${site.meta} to the backup host ${bsite.remote.host} failed: ${facts[0].stderr.trim().split('\n').pop() ?? ''}`, [
      `The root key of ${site.meta} must be authorized on the backup host, and the backup host's key known in ${site.meta}'s /root/.ssh/known_hosts (enssib never accepts a new host key). See docs/backup.md.`,
    ]);
  }
  return parseRecords(facts[0], destinationLabel(site.meta, bsite));
}

function volumeFilter(site: VolumeSite, raw: unknown): string | null {
  return raw === undefined ? null : validateVolumeName(site, raw);
}

export async function listCommand(ctx: Context, inv: Invocation): Promise<number> {
  const { site, bsite } = sites(ctx);
  const only = volumeFilter(site, inv.args[0]);
  const all = await readCatalogue(ctx, site, bsite);
  if (!all) return ExitCode.ok;
  const records = only ? all.filter((r) => r.volume === only) : all;
  ctx.out.result(
    () => ({ destination: destinationLabel(site.meta, bsite), backups: records }),
    () =>
      records.length === 0
        ? [`No backups${only ? ` of ${only}` : ''} in ${destinationLabel(site.meta, bsite)}.`]
        : ctx.out.table(
            ['BACKUP', 'VOLUME', 'METHOD', 'TIME', 'SIZE', 'COMPRESSED', 'ADDED', 'COPY', 'SNAPSHOT USED', 'SHA256'],
            records.map((r) => [
              r.id,
              r.volume,
              r.method,
              r.time,
              formatBytes(r.sizeBytes),
              formatBytes(r.compressedBytes),
              formatBytes(addedBytes(r)),
              `${(r.durationMs / 1000).toFixed(1)} s`,
              `${r.snapshotFillPercent.toFixed(1)}%`,
              r.method === 'image' ? r.sha256.slice(0, 12) : '-',
            ]),
          ),
  );
  return ExitCode.ok;
}

/** The records named by id (each must exist), or all. */
function pick(records: BackupRecord[], ids: string[]): BackupRecord[] {
  if (ids.length === 0) return records;
  return ids.map((id) => {
    const r = records.find((x) => x.id === id);
    if (!r) throw new UsageError(`no backup ${id} in the catalogue`, ['See the backups with: enssib backup list']);
    return r;
  });
}

/** Recomputed where the backups are (on the backup host for an ssh destination: the image does not travel). */
const sha256Argv = (bsite: BackupSite) => (file: string) => atDestination(bsite, ['sha256sum', '--', file]);

const lastLine = (t: string) => t.trim().split('\n').pop() ?? '';

/**
 * `image` backups: the image's sha256 recomputed and compared with the record.
 * `borg` backups: `borg check --verify-data` of the repository (every chunk's
 * MAC checked against its data), and each archive found in `borg list`.
 */
export async function verifyCommand(ctx: Context, inv: Invocation): Promise<number> {
  const { site, bsite } = sites(ctx);
  const raw = (inv.args[0] ?? []) as string[] | string;
  const ids = (Array.isArray(raw) ? raw : [raw]).map((v) => validateBackupId(v).id);
  const all = await readCatalogue(ctx, site, bsite);
  if (!all) {
    ctx.out.line(`Then, on ${site.meta}, for each image backup: ${quote(sha256Argv(bsite)(`${bsite.destination}/VOLUME/BACKUP.img.zst`))}`);
    if (bsite.borg) ctx.out.line(`and for the borg backups, once: ${quote(checkArgv(bsite.borg, true))}; ${quote(listArgv(bsite.borg))}`);
    return ExitCode.ok;
  }
  const records = pick(all, ids);
  if (records.length === 0) {
    ctx.out.result(() => ({ verified: [] }), () => ['No backups to verify.']);
    return ExitCode.ok;
  }
  const images = records.flatMap((r) => (r.method === 'image' ? [{ r, file: backupFiles(bsite.destination, r.volume, r.id).image }] : []));
  const borgs = records.filter((r) => r.method === 'borg');
  const repo = borgs.length > 0 ? borgRepoOf(bsite, 'verify') : null;
  const TITLE = 'recompute the checksums';
  // Reading every image (or every borg chunk) takes as long as the copies did: the copy's deadline, not ssh.commandTimeout.
  const checks = () => [...images.map((i) => sha256Argv(bsite)(i.file)), ...(repo ? [checkArgv(repo, true), listArgv(repo)] : [])];
  const plan: Plan = { title: 'backup verify', mutating: false, phases: [{ title: TITLE, hosts: [site.meta], checks, checksTimeoutMs: COPY_TIMEOUT_S * 1000 }] };
  const report = await run(ctx, plan, 'server');
  const facts = report.state.facts(TITLE, site.meta);
  if (!facts) {
    if (report.interrupted) throw new InterruptedError('backup verify interrupted');
    throw new OperationError(`cannot read the backups on ${site.meta}: ${report.phases[0]?.hosts[0]?.error?.message ?? 'no answer'}`);
  }
  const problems = new Map<string, string | null>();
  images.forEach(({ r, file }, i) => {
    const f = facts[i];
    const got = f && f.exitCode === 0 ? (/^([0-9a-f]{64})\s/.exec(f.stdout)?.[1] ?? null) : null;
    problems.set(r.id, got === null ? `cannot read ${file}${f?.stderr.trim() ? `: ${lastLine(f.stderr)}` : ''}` : r.method === 'image' && got !== r.sha256 ? `sha256 ${got} differs from the catalogue's ${r.sha256}` : null);
  });
  if (repo) {
    const check = facts[images.length];
    const list = facts[images.length + 1];
    const archives = new Set(list?.exitCode === 0 ? archiveNames(list.stdout) : []);
    for (const r of borgs) {
      const problem =
        check?.exitCode !== 0 ? `borg check --verify-data of ${repo.path} failed (exit code ${check?.exitCode ?? '?'}${check?.stderr.trim() ? `: ${lastLine(check.stderr)}` : ''})`
        : list?.exitCode !== 0 ? `cannot list the archives of ${repo.path} (exit code ${list?.exitCode ?? '?'}${list?.stderr.trim() ? `: ${lastLine(list.stderr)}` : ''})`
        : r.method === 'borg' && !archives.has(r.archive) ? `its archive ${r.archive} is not in ${repo.path}`
        : null;
      problems.set(r.id, problem);
    }
  }
  const results = records.map((r) => {
    const problem = problems.get(r.id) ?? null;
    return { id: r.id, method: r.method, ok: problem === null, ...(problem ? { problem } : {}) };
  });
  const bad = results.filter((r) => !r.ok);
  ctx.out.result(
    () => ({ verified: results }),
    () => results.map((r) => `${r.id}: ${r.ok ? 'ok' : `MISMATCH: ${r.problem}`}`),
  );
  if (bad.length > 0) throw new OperationError(`${bad.length} of ${results.length} backup(s) do not match the catalogue`, bad.map((b) => `${b.id}: ${b.problem}`));
  return ExitCode.ok;
}

/** The archives `borg prune` removed, as it said (`--list`). */
const PRUNED = valueKey<string[]>('prune.borg-pruned');

/**
 * `image` backups: the retention applied to the catalogue, then each record
 * and image removed. `borg` backups: `borg prune` with the same counts, per
 * volume (its `--dry-run --list` says what would go), the records of the
 * archives it pruned removed, then `borg compact`.
 */
export async function pruneCommand(ctx: Context): Promise<number> {
  const { site, bsite } = sites(ctx);
  if (retentionIsEmpty(bsite.retention)) {
    throw new UsageError('backup.retention keeps nothing (no daily, weekly or monthly count): prune would remove every backup', ['Set e.g. retention: { daily: 7, weekly: 4, monthly: 6 } in the inventory.']);
  }
  const all = await readCatalogue(ctx, site, bsite);
  const removeActions = (r: Pick<BackupRecord, 'volume' | 'id'>) => {
    const f = backupFiles(bsite.destination, r.volume, r.id);
    // The record goes first: a backup without its record is never listed, one without its image would be.
    return [command(atDestination(bsite, ['rm', '-f', '--', f.record]), `catalogue record of ${r.id}`), command(atDestination(bsite, ['rm', '-f', '--', f.image]), `image of ${r.id}`)];
  };
  if (!all) {
    ctx.out.line(`Then, on ${site.meta}, for each image backup beyond the retention (${retentionText(bsite)}): ${removeActions({ volume: 'VOLUME', id: 'BACKUP' }).map((a) => (a.kind === 'command' ? quote(a.argv) : '')).join('; ')}`);
    if (bsite.borg) ctx.out.line(`For the borg backups, per volume: ${quote(pruneArgv(bsite.borg, 'VOLUME', bsite.retention, false))}; then remove the records of the archives it pruned; then ${quote(compactArgv(bsite.borg))}`);
    ctx.out.line('With --dry-run=server the catalogue is read and the backups that would go are listed.');
    return ExitCode.ok;
  }
  const { keep, remove } = applyRetention(all.filter((r) => r.method === 'image'), bsite.retention);
  const borgs = all.filter((r) => r.method === 'borg');
  const volumes = [...new Set(borgs.map((r) => r.volume))].sort();
  const repo = volumes.length > 0 ? borgRepoOf(bsite, 'prune') : null;
  const would = repo ? await borgWouldPrune(ctx, site, repo, volumes, bsite) : { keep: [], prune: [] };
  const keepJson = () => [...keep.map((k) => ({ id: k.backup.id, reason: k.reason, rank: k.rank })), ...would.keep.map((id) => ({ id, reason: 'borg prune' }))];
  const removing = [...remove.map((r) => r.id), ...would.prune];
  const lines = () => [
    `Retention ${retentionText(bsite)}: keep ${keep.length + would.keep.length}, remove ${removing.length}.`,
    ...keep.map((k) => `  keep   ${k.backup.id} (${k.reason} ${k.rank})`),
    ...would.keep.map((id) => `  keep   ${id} (borg prune)`),
    ...removing.map((id) => `  remove ${id}`),
  ];
  if (mode(ctx) !== 'apply' || removing.length === 0) {
    ctx.out.result(() => ({ keep: keepJson(), remove: removing, removed: [] }), lines);
    return ExitCode.ok;
  }
  for (const l of lines()) ctx.out.note(l);
  await ctx.prompt.confirm(`Remove ${removing.length} backup(s) from ${destinationLabel(site.meta, bsite)}?`);
  const phases: Phase[] = [];
  if (remove.length > 0) {
    phases.push({ title: 'remove the backups beyond the retention', hosts: [site.meta], checks: () => [atDestination(bsite, listRecordsArgv(bsite.destination))], plan: (_h, f) => {
      // Read again right before removing: the catalogue must still read cleanly (nothing is removed from a corrupted one).
      if (f?.[0]) parseRecords(f[0], destinationLabel(site.meta, bsite));
      return remove.flatMap(removeActions);
    } });
  }
  if (repo && would.prune.length > 0) phases.push(...borgPrunePhases(site, bsite, repo, volumes, borgs));
  const report = await run(ctx, { title: 'backup prune', mutating: true, phases });
  writeJournal(ctx, journalEntry(report));
  const pruned = report.state.values.get(PRUNED) ?? [];
  ctx.out.result(
    () => ({ keep: keepJson(), remove: removing, removed: report.exitCode === 0 ? [...remove.map((r) => r.id), ...pruned] : [], run: reportJson(report) }),
    () => summaryLines(report, ctx.out),
  );
  if (report.exitCode !== 0) throw new OperationError(`backup prune stopped at "${report.stoppedAt ?? 'a failure'}"`, ['See the summary above; run it again once the cause is fixed.']);
  return ExitCode.ok;
}

/** What `borg prune --dry-run --list` keeps and would prune, over the volumes (read-only). */
async function borgWouldPrune(ctx: Context, site: VolumeSite, repo: BorgRepo, volumes: string[], bsite: BackupSite): Promise<{ keep: string[]; prune: string[] }> {
  const TITLE = 'ask borg prune what it would remove (--dry-run)';
  const report = await run(ctx, { title: 'backup prune', mutating: false, phases: [{ title: TITLE, hosts: [site.meta], checks: () => volumes.map((v) => pruneArgv(repo, v, bsite.retention, true)) }] }, 'server');
  const facts = report.state.facts(TITLE, site.meta);
  if (!facts) {
    if (report.interrupted) throw new InterruptedError('backup prune interrupted: nothing was removed');
    throw new OperationError(`cannot ask borg prune on ${site.meta}: ${report.phases[0]?.hosts[0]?.error?.message ?? 'no answer'}`, ['Nothing was removed.']);
  }
  const out = { keep: [] as string[], prune: [] as string[] };
  volumes.forEach((v, i) => {
    const f = facts[i];
    if (f?.exitCode !== 0) throw new OperationError(`borg prune --dry-run of ${v} in ${repo.path} failed (exit code ${f?.exitCode ?? '?'}${f?.stderr.trim() ? `: ${lastLine(f.stderr)}` : ''})`, ['Nothing was removed.']);
    const l = parsePruneList(f.stderr);
    out.keep.push(...l.keep);
    out.prune.push(...l.prune);
  });
  return out;
}

/** borg prune per volume (what it pruned kept in the run's values), the records of those archives removed, then borg compact. */
function borgPrunePhases(site: VolumeSite, bsite: BackupSite, repo: BorgRepo, volumes: string[], records: BackupRecord[]): Phase[] {
  return [
    {
      title: 'borg prune: the archives beyond the retention, per volume',
      hosts: [site.meta],
      plan: (_h, _f, state) =>
        volumes.map((v) =>
          command(pruneArgv(repo, v, bsite.retention, false), `archives of ${v}`, {
            timeoutMs: 6 * 3600_000,
            result: (r) => state.values.set(PRUNED, [...(state.values.get(PRUNED) ?? []), ...parsePruneList(r.stderr).prune]),
          }),
        ),
    },
    {
      title: 'remove the catalogue records of the pruned archives',
      hosts: [site.meta],
      plan: (_h, _f, state) => {
        const gone = new Set(state.values.get(PRUNED) ?? []);
        return records.filter((r) => gone.has(r.id)).map((r) => command(atDestination(bsite, ['rm', '-f', '--', backupFiles(bsite.destination, r.volume, r.id).record]), `catalogue record of ${r.id}`));
      },
    },
    { title: 'borg compact: free the space of the pruned archives', hosts: [site.meta], plan: () => [command(compactArgv(repo), repo.path, { timeoutMs: 6 * 3600_000 })] },
  ];
}

function retentionText(b: BackupSite): string {
  const r = b.retention;
  return `daily ${r.daily ?? 0}, weekly ${r.weekly ?? 0}, monthly ${r.monthly ?? 0}`;
}


// ---------------------------------------------------------------- schedule

export async function scheduleCommand(ctx: Context, inv: Invocation): Promise<number> {
  const at = validateAt(inv.opts.at);
  const install = inv.opts.install === true;
  if (!install && (inv.opts.unitDir !== undefined || inv.opts.force === true)) throw new UsageError('--unit-dir and --force go with --install', ['enssib backup schedule --install --yes']);
  const unitDir = inv.opts.unitDir === undefined ? undefined : resolve(ctx.cwd, String(inv.opts.unitDir));
  const units = scheduleUnits({ node: process.execPath, bin: realpathSync(process.argv[1] ?? ''), inventory: resolve(ctx.inventory().file), at, ...(unitDir ? { unitDir } : {}) });
  if (!install) {
    ctx.out.result(
      () => ({ units }),
      () => [...units.flatMap((u) => [`# ${u.path}`, ...u.content.trimEnd().split('\n'), '']), '# Install: enssib backup schedule --install (or write both files, then: systemctl daemon-reload && systemctl enable --now enssib-backup.timer)'],
    );
    return ExitCode.ok;
  }
  if (unitDir && !statSync(unitDir, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--unit-dir ${JSON.stringify(unitDir).slice(0, 80)}: not a folder`);
  const local = new LocalHost(hostname());
  const plan = installPlan(units, local.name, { force: inv.opts.force === true });
  const as = mode(ctx);
  const hosts = localPool(local);
  const stopped = (report: RunReport) => {
    const failed = report.phases.flatMap((p) => p.hosts.filter((h) => h.status === 'failed').map((h) => h.error)).find((e) => e !== undefined);
    return new OperationError(`backup schedule --install stopped at "${report.stoppedAt ?? 'a failure'}": ${failed?.message ?? ''}`, failed?.details ?? []);
  };
  if (as === 'apply') {
    // Read first, quietly: a unit enssib did not write is refused before the question.
    const first = await runPlan(plan, { mode: 'server', concurrency: 1, hosts, signal: ctx.signal });
    if (first.interrupted) throw new InterruptedError('interrupted: nothing was changed');
    if (first.exitCode !== ExitCode.ok) throw stopped(first);
    await ctx.prompt.confirm(`Write ${units.map((u) => u.path).join(' and ')}, then enable and start the timer (daily at ${at}) on ${local.name}?`);
  }
  const report = await runPlan(plan, { mode: as, concurrency: 1, hosts, ...runnerContext(ctx) });
  if (as === 'apply') writeJournal(ctx, journalEntry(report));
  ctx.out.result(
    () => ({ units: units.map((u) => u.path), run: reportJson(report) }),
    () => (as === 'apply' ? summaryLines(report, ctx.out) : planLines(report, ctx.out)),
  );
  if (report.exitCode !== ExitCode.ok) throw stopped(report);
  return ExitCode.ok;
}
