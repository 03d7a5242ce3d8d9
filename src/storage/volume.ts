import type { Action, Facts, Phase, RunState } from '../engine/types.js';
import { probePhase, probedFacts, rawProbe, readProbes, type FactsOf } from '../engine/probe.js';
import { ConfigError, OperationError, UsageError } from '../errors.js';
import type { Inventory } from '../inventory/inventory.js';
import { validateName } from '../validate.js';
import { drbdChecks, drbdProblems, parseDrbdadm } from './drbd.js';
import { DEFAULT_LOCK_FILE, LOCK_HELD_EXIT, acquireArgv, heldBy, releaseArgv, type LockOwner } from './lock.js';
import { lvmFailure, lvsArgv, parseLvs, parseVgs, pvCheckArgv, pvProblem, vgsArgv, type LvInfo, type VgInfo } from './lvm.js';
import { lioFactsArgv, parseLioFacts, type LioState } from './targets/lio.js';
import { SCST_MAX_NAME, parseScstConf, readConfArgv, runningConfArgv, type ScstConf } from './targets/scst.js';
import type { ErrorReport, RunReport } from '../engine/types.js';

/**
 * What every volume plan shares: the storage side of the inventory, the name
 * rules, the storage lock phases and the facts read on the storage servers.
 */

export type TargetDriver = 'scst' | 'lio';

export interface StorageServer {
  name: string;
  address: string;
  /** This server's iSCSI portal, "10.66.6.1:3260". */
  portal: string;
}

export interface VolumeSite {
  vg: string;
  drbd: string;
  meta: string;
  servers: StorageServer[];
  workers: string[];
  iqnPrefix: string;
  driver: TargetDriver;
  lockFile: string;
}

export function volumeSite(inv: Inventory): VolumeSite {
  const s = inv.data.storage;
  const servers = inv.storageServers().map((h) => {
    const portal = s.portals.find((p) => p.slice(0, p.lastIndexOf(':')) === h.address);
    if (!portal) throw new ConfigError(`storage server ${h.name} (${h.address}) has no portal in storage.portals of ${inv.file}`);
    return { name: h.name, address: h.address, portal };
  });
  if (servers.length === 0) throw new ConfigError(`no storage server in ${inv.file}`);
  const meta = inv.metadataHost().name;
  if (!servers.some((x) => x.name === meta)) throw new ConfigError(`the metadata host ${meta} is not a storage server`);
  return {
    vg: s.volumeGroup,
    drbd: s.drbdResource,
    meta,
    servers,
    workers: inv.workers().map((w) => w.name),
    iqnPrefix: s.iqnPrefix,
    driver: s.targetDriver,
    lockFile: s.lockFile ?? DEFAULT_LOCK_FILE,
  };
}

/** IQNs are at most 223 bytes (RFC 3720). */
const IQN_MAX = 223;

/**
 * A volume name: a DNS-1123 label (it becomes an LV name, an IQN suffix, a
 * target device name and a PersistentVolume name) within the driver's limits.
 */
export function validateVolumeName(site: Pick<VolumeSite, 'driver' | 'iqnPrefix'>, value: unknown): string {
  const max = site.driver === 'scst' ? SCST_MAX_NAME : 63;
  const name = validateName('volume', value, 63);
  if (name.length > max) {
    throw new UsageError(`volume name "${name}" is ${name.length} characters long; with the ${site.driver} target driver at most ${max} are allowed`, [
      `SCST names its vdisk devices with at most ${SCST_MAX_NAME} characters (older SCST versions); choose a shorter name.`,
    ]);
  }
  if (iqnOf(site, name).length > IQN_MAX) throw new UsageError(`the IQN of volume "${name}" would be longer than ${IQN_MAX} bytes`);
  return name;
}

export function iqnOf(site: Pick<VolumeSite, 'iqnPrefix'>, name: string): string {
  return `${site.iqnPrefix}:${name}`;
}

// ---------------------------------------------------------------- lock

export const PHASE_LOCK = 'take the storage lock';
export const PHASE_RELEASE = 'release the storage lock';

export function lockPhase(site: VolumeSite, owner: LockOwner, waitS: number): Phase {
  return {
    title: PHASE_LOCK,
    hosts: [site.meta],
    // Waiting for the lock is cancelled at the first Ctrl-C (the wait loop is stopped on the host; the release phase removes the lock if it was taken).
    plan: () => [{ kind: 'command', argv: acquireArgv(site.lockFile, owner, waitS), label: `lock ${site.lockFile}`, timeoutMs: (waitS + 60) * 1000, interruptible: true }],
    // Later phases do not read what the lock changes: a server dry run plans them from facts.
    independent: true,
  };
}

export function releasePhase(site: VolumeSite, owner: LockOwner): Phase {
  return {
    title: PHASE_RELEASE,
    hosts: [site.meta],
    plan: () => [{ kind: 'command', argv: releaseArgv(site.lockFile, owner), label: `unlock ${site.lockFile}` }],
  };
}

/** Turns a run stopped at the lock (held by another command, or not takeable) into the error the user reads. */
export function lockError(report: RunReport, site: VolumeSite): OperationError | null {
  const o = report.phases.find((p) => p.title === PHASE_LOCK)?.hosts[0];
  if (o?.status !== 'failed' || !o.error) return null;
  if (o.error.remoteExitCode === LOCK_HELD_EXIT) {
    const who = heldBy(o.error.details.join('\n')) ?? 'another enssib command';
    return new OperationError(`the storage lock on ${site.meta} is held by ${who}`, [
      'Nothing was changed. Wait for that command to finish, or give --lock-wait SECONDS to wait longer.',
      'If no enssib command is running any more (it was killed), see the lock with: enssib lock status — and remove it with: enssib lock break',
    ]);
  }
  return new OperationError(`cannot take the storage lock on ${site.meta}: ${o.error.message}`, [...o.error.details, 'Nothing was changed.']);
}

/** A lock the run could not release: the run's outcome stands, but the lock is still held and the exit code says so. */
export function releaseError(report: RunReport, site: VolumeSite): OperationError | null {
  const o = report.phases.find((p) => p.title === PHASE_RELEASE)?.hosts[0];
  if (o?.status !== 'failed') return null;
  return new OperationError(`lock still held: the storage lock ${site.lockFile} on ${site.meta} could not be released (${o.error?.message ?? 'failed'})`, [
    'Other volume commands wait for it until it is removed. Once you know no enssib command runs: enssib lock status, then enssib lock break',
  ]);
}

// ---------------------------------------------------------------- storage facts

export const PHASE_READ = 'read DRBD, LVM and target state on the storage servers';

export interface StorageFacts {
  host: string;
  drbdProblems: string[];
  vg: VgInfo | null;
  vgProblem: string | null;
  lvs: LvInfo[];
  /** The named volume's LV, when a name was given. */
  lv: LvInfo | null;
  /** Why the VG is not on the inventory's DRBD device (with the `pvs` option), or null. */
  pvProblem: string | null;
  scst?: { conf: ScstConf; text: string; exists: boolean; running: ScstConf; mode: string };
  lio?: LioState;
}

/** Which facts a command reads: DRBD state (default yes), the VG and its LVs (default yes), the VG's physical volumes (default no). */
export interface FactOptions {
  drbd?: boolean;
  lvm?: boolean;
  pvs?: boolean;
}

/** The read-only probes run on each storage server, by name. */
export function storageProbes(site: VolumeSite, opts: FactOptions = {}) {
  const [role, cstate, dstate] = drbdChecks(site.drbd) as [string[], string[], string[]];
  return {
    ...(opts.drbd !== false ? { drbdRole: rawProbe(role), drbdCState: rawProbe(cstate), drbdDState: rawProbe(dstate) } : {}),
    ...(opts.lvm !== false ? { vgs: rawProbe(vgsArgv(site.vg)), lvs: rawProbe(lvsArgv(site.vg)) } : {}),
    ...(opts.pvs ? { pvs: rawProbe(pvCheckArgv(site.vg, site.drbd)) } : {}),
    ...(site.driver === 'scst' ? { scstConf: rawProbe(readConfArgv()), scstRunning: rawProbe(runningConfArgv()), scstStat: rawProbe(['stat', '-c', '%a %U:%G', '/etc/scst.conf']) } : {}),
    ...(site.driver === 'lio' ? { lio: rawProbe(lioFactsArgv()) } : {}),
  };
}

export type StorageProbes = ReturnType<typeof storageProbes>;

/** The probes' commands, in the order their results come back. */
export function storageChecks(site: VolumeSite, opts: FactOptions = {}): string[][] {
  return Object.values(storageProbes(site, opts)).map((p) => p.argv);
}

/** Storage facts from the results of `storageChecks` (in their order). */
export function parseStorageFacts(site: VolumeSite, host: string, name: string | null, facts: Facts, opts: FactOptions = {}): StorageFacts {
  return storageFacts(site, host, name, readProbes(storageProbes(site, opts), facts));
}

/** Storage facts from the named probe results. */
export function storageFacts(site: VolumeSite, host: string, name: string | null, f: FactsOf<StorageProbes>): StorageFacts {
  const out: StorageFacts = { host, drbdProblems: [], vg: null, vgProblem: null, lvs: [], lv: null, pvProblem: null };
  if (f.drbdRole && f.drbdCState && f.drbdDState) out.drbdProblems = drbdProblems(site.drbd, parseDrbdadm(f.drbdRole, f.drbdCState, f.drbdDState));
  const { vgs, lvs } = f;
  if (vgs && lvs) {
    try {
      if (vgs.exitCode !== 0) out.vgProblem = lvmFailure(vgs, site.vg);
      else out.vg = parseVgs(vgs.stdout).find((v) => v.name === site.vg) ?? null;
      if (!out.vgProblem && !out.vg) out.vgProblem = `volume group ${site.vg} not found`;
      if (lvs.exitCode === 0) out.lvs = parseLvs(lvs.stdout).filter((l) => l.vg === site.vg);
      else if (!out.vgProblem) out.vgProblem = lvmFailure(lvs, site.vg);
    } catch (e) {
      throw new OperationError(`${host}: ${(e as Error).message}`);
    }
  }
  if (name !== null) out.lv = out.lvs.find((l) => l.name === name) ?? null;
  if (f.pvs) out.pvProblem = pvProblem(f.pvs, site.vg, site.drbd);
  if (f.scstConf && f.scstRunning && f.scstStat) {
    const [file, running, stat] = [f.scstConf, f.scstRunning, f.scstStat];
    if (file.exitCode !== 0) throw new OperationError(`${host}: cannot read /etc/scst.conf`, [file.stderr.trim()]);
    let conf: ScstConf;
    let runningConf: ScstConf;
    try {
      conf = parseScstConf(file.stdout);
    } catch (e) {
      throw new OperationError(`${host}: ${(e as Error).message}`, ['enssib edits /etc/scst.conf as data and will not write a file it cannot read.']);
    }
    // The configuration in force decides what is stale; one that cannot be read is an error, never "empty".
    const inForce = 'cannot read the SCST configuration in force (scstadmin -write_config)';
    if (running.exitCode !== 0) {
      const why = running.stderr.trim().split('\n').filter(Boolean).pop() ?? `exit code ${running.exitCode}`;
      throw new OperationError(`${host}: ${inForce}: ${why}`, ['Nothing was changed. enssib decides from the state in force and stops when it cannot read it.']);
    }
    try {
      runningConf = parseScstConf(running.stdout);
    } catch (e) {
      throw new OperationError(`${host}: ${inForce}: ${(e as Error).message}`, ['Nothing was changed.']);
    }
    const mode = stat.exitCode === 0 ? (stat.stdout.trim().split(' ')[0] ?? '600') : '600';
    out.scst = { conf, text: file.stdout, exists: stat.exitCode === 0, running: runningConf, mode: mode.padStart(4, '0') };
  }
  if (f.lio) {
    try {
      if (f.lio.exitCode !== 0) throw new Error(f.lio.stderr.trim() || `exit code ${f.lio.exitCode}`);
      out.lio = parseLioFacts(f.lio.stdout);
    } catch (e) {
      throw new OperationError(`${host}: cannot read the LIO configuration: ${(e as Error).message}`);
    }
  }
  return out;
}

/** The storage facts of a host read in PHASE_READ (apply and server dry run), or null (client dry run). */
export function readFacts(site: VolumeSite, state: RunState, host: string, name: string | null, opts: FactOptions = {}): StorageFacts | null {
  const f = probedFacts(state, PHASE_READ, host, storageProbes(site, opts));
  return f ? storageFacts(site, host, name, f) : null;
}

export function readPhase(site: VolumeSite, name: string | null, decide: (host: string, facts: StorageFacts | null, state: RunState) => void, opts: FactOptions = {}): Phase {
  return probePhase({
    title: PHASE_READ,
    hosts: site.servers.map((s) => s.name),
    probes: () => storageProbes(site, opts),
    decide: (host, raw, state) => {
      const f = raw ? storageFacts(site, host, name, raw) : null;
      if (f) {
        if (f.drbdProblems.length > 0) throw new OperationError(`${host}: DRBD is not ready for a volume change`, f.drbdProblems);
        if (f.vgProblem) throw new OperationError(`${host}: ${f.vgProblem}`);
        if (f.pvProblem) throw new OperationError(`${host}: ${f.pvProblem}`, ['Nothing was changed. enssib creates volumes only on the DRBD-replicated volume group the inventory names (storage.volumeGroup on storage.drbdResource).']);
      }
      decide(host, f, state);
    },
  });
}

/** A run stopped while reading the storage servers: which server, and that nothing changed. */
export function readError(report: RunReport): OperationError | UsageError | null {
  const p = report.phases.find((x) => x.title === PHASE_READ);
  const failed = p?.hosts.filter((h) => h.status === 'failed') ?? [];
  if (failed.length === 0) return null;
  const first = failed[0]?.error as ErrorReport;
  if (first.exitCode === 2) return new UsageError(first.message, first.details);
  const unreachable = failed.filter((h) => /ssh|connection|cannot reach|no answer|timed out|refused|no route/i.test(h.error?.message ?? ''));
  const head =
    unreachable.length > 0
      ? `storage server ${unreachable.map((h) => h.host).join(' and ')} ${unreachable.length > 1 ? 'are' : 'is'} unreachable: nothing was changed`
      : `${failed.map((h) => h.error?.message).join('; ')}: nothing was changed`;
  const prefixed = (h: (typeof failed)[number]) => {
    const m = h.error?.message ?? 'failed';
    return m.startsWith(`${h.host}: `) ? m : `${h.host}: ${m}`;
  };
  return new OperationError(head, failed.flatMap((h) => [prefixed(h), ...(h.error?.details ?? []).map((d) => `  ${d}`)]));
}

export function command(argv: string[], label: string, extra: Partial<Omit<Action & { kind: 'command' }, 'kind' | 'argv' | 'label'>> = {}): Action {
  return { kind: 'command', argv, label, ...extra };
}
