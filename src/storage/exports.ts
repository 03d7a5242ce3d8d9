import type { Action } from '../engine/types.js';
import { OperationError } from '../errors.js';
import type { Identity } from './identity.js';
import { lvPath } from './lvm.js';
import type { RunResult } from '../remote/types.js';
import { lioExportActions, lioSessionsArgv, lioMatches, lioRemoveActions, lioUndoActions, lioVolumeState } from './targets/lio.js';
import {
  SCST_CONF,
  SCST_HANDLER,
  applyArgv,
  closeDeviceArgv,
  deviceMatches,
  removeTargetArgv,
  removeVolume,
  scstSessionsArgv,
  renderScstConf,
  stateMatches,
  upsertVolume,
  volumeBlocks,
  volumeState,
  type ScstVolume,
} from './targets/scst.js';
import { command, iqnOf, type StorageFacts, type StorageServer, type VolumeSite } from './volume.js';

/**
 * The export of one volume on one storage server, for either driver: what to
 * run to add it, to take back what a run added, and to remove it.
 */

export interface ExportSpec {
  name: string;
  identity: Identity;
}

function scstVolume(site: VolumeSite, v: ExportSpec): ScstVolume {
  return { name: v.name, filename: lvPath(site.vg, v.name), identity: v.identity, iqn: iqnOf(site, v.name) };
}

/** Whether the server exports the volume as wanted (file and configuration in force for SCST). */
export function exportPresent(site: VolumeSite, server: StorageServer, f: StorageFacts, v: ExportSpec): boolean {
  const iqn = iqnOf(site, v.name);
  if (site.driver === 'scst' && f.scst) {
    const sv = scstVolume(site, v);
    return stateMatches(volumeState(f.scst.conf, v.name, iqn), sv) && stateMatches(volumeState(f.scst.running, v.name, iqn), sv);
  }
  if (f.lio) return lioMatches(lioVolumeState(f.lio, v.name, iqn), { name: v.name, dev: lvPath(site.vg, v.name), identity: v.identity, iqn, portal: server.portal });
  return false;
}

/** Whether anything of the volume is exported on the server (any identity). */
export function exportTrace(site: VolumeSite, f: StorageFacts, name: string): string[] {
  const iqn = iqnOf(site, name);
  const out: string[] = [];
  if (f.scst) {
    const file = volumeState(f.scst.conf, name, iqn);
    const run = volumeState(f.scst.running, name, iqn);
    if (file.device) out.push(`device ${name} in ${SCST_CONF}`);
    if (file.target) out.push(`target ${iqn} in ${SCST_CONF}`);
    if (run.device) out.push(`device ${name} in force`);
    if (run.target) out.push(`target ${iqn} in force`);
  }
  if (f.lio) {
    const st = lioVolumeState(f.lio, name, iqn);
    if (st.backstore) out.push(`LIO backstore ${st.backstore.hba}/${name}`);
    if (st.tpg) out.push(`LIO target ${iqn}`);
  }
  return out;
}

/**
 * The actions that export the volume on this server. `f` is null in a client
 * dry run: the plan then shows everything it may do. Throws OperationError when
 * the server exports something else under the volume's name.
 */
export function exportActions(site: VolumeSite, server: StorageServer, f: StorageFacts | null, v: ExportSpec): Action[] {
  const iqn = iqnOf(site, v.name);
  if (site.driver === 'scst') {
    const sv = scstVolume(site, v);
    if (!f?.scst) {
      return [
        {
          kind: 'task',
          label: `edit ${SCST_CONF}: add or replace these objects, keep every other object as it is`,
          lines: volumeBlocks(sv),
          run: async () => {
            throw new OperationError('internal: the SCST edit needs the facts of the storage server');
          },
        },
        command(applyArgv(), 'apply the differences'),
      ];
    }
    const running = volumeState(f.scst.running, v.name, iqn);
    if (running.device && !deviceMatches(running.device, sv)) {
      throw new OperationError(`${server.name}: SCST runs a device "${v.name}" that is not this volume's (other file or identity)`, [
        ...[...running.device.attrs].map(([k, vals]) => `  in force: ${k} ${vals.join(', ')}`),
        'A stale export of an earlier volume: remove it first (enssib volume delete, or scstadmin -close_dev) — it is never replaced silently.',
      ]);
    }
    let next;
    try {
      next = upsertVolume(f.scst.conf, sv);
    } catch (e) {
      throw new OperationError(`${server.name}: ${(e as Error).message}`);
    }
    const text = renderScstConf(next);
    const actions: Action[] = [];
    if (text !== f.scst.text) actions.push({ kind: 'file', file: { path: SCST_CONF, content: text, mode: f.scst.mode, owner: 'root:root' }, label: 'volume device and target' });
    if (actions.length > 0 || !stateMatches(running, sv)) actions.push(command(applyArgv(), 'apply the differences'));
    return actions;
  }
  const dev = lvPath(site.vg, v.name);
  const lv = { name: v.name, dev, identity: v.identity, iqn, portal: server.portal };
  if (!f?.lio) return lioExportActions({ backstore: null, tpg: null }, lv).actions;
  try {
    return lioExportActions(lioVolumeState(f.lio, v.name, iqn), lv).actions;
  } catch (e) {
    throw new OperationError(`${server.name}: ${(e as Error).message}`, ['A stale export of an earlier volume: remove it first (enssib volume delete) — it is never replaced silently.']);
  }
}

/** The read-only command listing the initiators with a session on the volume's target on one server. */
export function targetSessionsArgv(site: VolumeSite, name: string): string[] {
  const iqn = iqnOf(site, name);
  return site.driver === 'scst' ? scstSessionsArgv(iqn) : lioSessionsArgv(iqn);
}

/** The initiator names `targetSessionsArgv` printed; a failed read is an error, never "no session". */
export function parseTargetSessions(r: RunResult): string[] {
  if (r.exitCode !== 0) throw new OperationError(`cannot read the sessions of the target (exit code ${r.exitCode}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').pop()}` : ''})`);
  return [...new Set(r.stdout.split(/[\n\0]/).map((l) => l.trim()).filter(Boolean))];
}

/** Takes back what `exportActions` added on this server (what the facts say was absent before); tolerates a partial export. */
export function exportUndo(site: VolumeSite, f: StorageFacts | null, v: ExportSpec): Action[] {
  const iqn = iqnOf(site, v.name);
  if (!f) return [];
  if (site.driver === 'scst' && f.scst) {
    const before = volumeState(f.scst.running, v.name, iqn);
    const actions: Action[] = [
      f.scst.exists
        ? { kind: 'file', file: { path: SCST_CONF, content: f.scst.text, mode: f.scst.mode, owner: 'root:root' }, label: `${SCST_CONF} as it was` }
        : command(['rm', '-f', SCST_CONF], `there was no ${SCST_CONF} before`),
    ];
    if (!before.target) actions.push(...removeTargetArgv(iqn).map((a) => command(a, 'remove the target this run added', { okCodes: [0, 1] })));
    if (!before.device) actions.push(command(closeDeviceArgv(v.name), 'close the device this run added', { okCodes: [0, 1] }));
    return actions;
  }
  if (f.lio) {
    const st = lioVolumeState(f.lio, v.name, iqn);
    return lioUndoActions({ backstore: !st.backstore, target: !st.tpg }, v.name, iqn);
  }
  return [];
}

/** Removes the volume's export from this server (what exists of it). */
export function unexportActions(site: VolumeSite, f: StorageFacts | null, name: string): Action[] {
  const iqn = iqnOf(site, name);
  if (site.driver === 'scst') {
    if (!f?.scst) {
      return [
        {
          kind: 'task',
          label: `edit ${SCST_CONF}: remove DEVICE ${name} and TARGET ${iqn}, keep every other object as it is`,
          lines: [],
          run: async () => {
            throw new OperationError('internal: the SCST edit needs the facts of the storage server');
          },
        },
        ...removeTargetArgv(iqn).map((a) => command(a, 'remove the target')),
        command(closeDeviceArgv(name), 'close the device'),
      ];
    }
    const actions: Action[] = [];
    const own = { name, filename: lvPath(site.vg, name), iqn };
    let text: string;
    try {
      text = renderScstConf(removeVolume(f.scst.conf, own));
      removeVolume(f.scst.running, own);
    } catch (e) {
      throw new OperationError(`${f.host}: ${(e as Error).message}`, ['Nothing was changed.']);
    }
    const running = volumeState(f.scst.running, name, iqn);
    if (running.device && running.device.handler !== SCST_HANDLER) {
      throw new OperationError(`${f.host}: SCST runs a device "${name}" under HANDLER ${running.device.handler}; enssib manages ${SCST_HANDLER} devices only and leaves it alone`, ['Nothing was changed.']);
    }
    if (text !== f.scst.text) actions.push({ kind: 'file', file: { path: SCST_CONF, content: text, mode: f.scst.mode, owner: 'root:root' }, label: 'without the volume' });
    if (running.target) actions.push(...removeTargetArgv(iqn).map((a) => command(a, 'remove the target')));
    if (running.device) actions.push(command(closeDeviceArgv(name), 'close the device'));
    return actions;
  }
  if (!f?.lio) return lioRemoveActions({ backstore: true, target: true }, name, iqn);
  const st = lioVolumeState(f.lio, name, iqn);
  return lioRemoveActions({ backstore: !!st.backstore, target: !!st.tpg }, name, iqn);
}
