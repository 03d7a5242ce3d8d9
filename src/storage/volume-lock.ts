import type { Phase, RunReport } from '../engine/types.js';
import { OperationError } from '../errors.js';
import { LOCK_HELD_EXIT, acquireArgv, heldBy, releaseArgv, type LockOwner } from './lock.js';
import { command, type VolumeSite } from './volume.js';

/**
 * The lock of one volume, beside the storage lock on the metadata host: a
 * backup holds it for the hours a copy can take without blocking the other
 * volumes or `volume create`; `volume resize` and `volume delete` take it too
 * (without waiting), so they refuse while a backup of that volume runs.
 */

export const PHASE_VOLUME_LOCK = 'take the lock of the volume';
export const PHASE_VOLUME_UNLOCK = 'release the lock of the volume';

export function volumeLockFile(site: Pick<VolumeSite, 'lockFile'>, volume: string): string {
  return `${site.lockFile.slice(0, site.lockFile.lastIndexOf('/') + 1)}volume-${volume}.lock`;
}

export function volumeLockPhase(site: VolumeSite, volume: string, owner: LockOwner, waitS: number): Phase {
  const file = volumeLockFile(site, volume);
  return {
    title: PHASE_VOLUME_LOCK,
    hosts: [site.meta],
    plan: () => [{ kind: 'command', argv: acquireArgv(file, owner, waitS), label: `lock ${file}`, timeoutMs: (waitS + 60) * 1000, interruptible: true }],
    independent: true,
  };
}

export function volumeUnlockPhase(site: VolumeSite, volume: string, owner: LockOwner): Phase {
  const file = volumeLockFile(site, volume);
  return { title: PHASE_VOLUME_UNLOCK, hosts: [site.meta], plan: () => [command(releaseArgv(file, owner), `unlock ${file}`)] };
}

/** A run stopped at the volume's lock (a backup of it runs): who holds it, and that nothing changed. */
export function volumeLockError(report: RunReport, site: VolumeSite): OperationError | null {
  const o = report.phases.find((p) => p.title === PHASE_VOLUME_LOCK)?.hosts[0];
  if (o?.status !== 'failed' || !o.error) return null;
  if (o.error.remoteExitCode === LOCK_HELD_EXIT) {
    return new OperationError(`the volume is locked on ${site.meta} by ${heldBy(o.error.details.join('\n')) ?? 'another enssib command'}`, [
      'Nothing was changed. A backup of the volume holds its lock while it runs; try again when it is finished.',
    ]);
  }
  return new OperationError(`cannot take the lock of the volume on ${site.meta}: ${o.error.message}`, [...o.error.details, 'Nothing was changed.']);
}
