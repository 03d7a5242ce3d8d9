import type { Action, CommandAction } from '../../engine/types.js';
import { lioSerial, type Identity } from '../identity.js';
import { oneLine } from '../shell.js';

/**
 * LIO as data: the configfs tree read by one read-only script, and the exact
 * `targetcli` argv that brings a storage server to the wanted export —
 * a block backstore with the volume's identity as its `wwn` (unit serial, the
 * same on both servers), an iSCSI target `<iqn-prefix>:<name>` with LUN 0 and
 * one portal on the server's own cluster address.
 *
 * Access mode (documented): the TPG runs in "demo mode" — generate_node_acls=1,
 * cache_dynamic_acls=1, demo_mode_write_protect=0, authentication=0 — so every
 * initiator that reaches the portal may log in, like the site's SCST targets
 * whose LUNs sit in the default group. Access control is the cluster network
 * itself: unrouted (10.66.6.0/24), and the portal listens on the storage
 * server's cluster address only, never on 0.0.0.0. A new worker therefore needs
 * no change on the storage servers (a TPG a site restricted with ACLs gets
 * the worker's ACL from `node bootstrap`: lioAddAclActions).
 */

export const CONFIGFS = '/sys/kernel/config/target';
export const TPG = 1;
export const OPEN_MODE: Record<string, string> = {
  generate_node_acls: '1',
  cache_dynamic_acls: '1',
  demo_mode_write_protect: '0',
  authentication: '0',
};

const FACTS = oneLine(
  `cfg=${CONFIGFS}
if [ ! -d "$cfg/core" ]; then printf 'error\\tno LIO configfs tree at %s (is target_core_mod loaded?)\\n' "$cfg"; exit 0; fi
for so in "$cfg"/core/iblock_*/*; do
  [ -f "$so/udev_path" ] || continue
  hba=\${so%/*}
  serial=$(sed -n 's/^T10 VPD Unit Serial Number: *//p' "$so/wwn/vpd_unit_serial" 2>/dev/null)
  printf 'so\\t%s\\t%s\\t%s\\t%s\\n' "\${hba##*/}" "\${so##*/}" "$(cat "$so/udev_path")" "$serial"
done
for t in "$cfg"/iscsi/iqn.*; do
  [ -d "$t" ] || continue
  iqn=\${t##*/}
  for g in "$t"/tpgt_*; do
    [ -d "$g" ] || continue
    tag=\${g##*/tpgt_}
    printf 'tpg\\t%s\\t%s\\t%s' "$iqn" "$tag" "$(cat "$g/enable")"
    for a in generate_node_acls cache_dynamic_acls demo_mode_write_protect authentication; do printf '\\t%s=%s' "$a" "$(cat "$g/attrib/$a" 2>/dev/null)"; done
    printf '\\n'
    for np in "$g"/np/*; do [ -d "$np" ] && printf 'portal\\t%s\\t%s\\t%s\\n' "$iqn" "$tag" "\${np##*/}"; done
    for l in "$g"/lun/lun_*; do
      [ -d "$l" ] || continue
      for s in "$l"/*; do
        [ -L "$s" ] || continue
        d=$(readlink -f "$s")
        printf 'lun\\t%s\\t%s\\t%s\\t%s\\n' "$iqn" "$tag" "\${l##*/lun_}" "\${d#"$cfg"/core/}"
      done
    done
    for a in "$g"/acls/*; do [ -d "$a" ] && printf 'acl\\t%s\\t%s\\t%s\\n' "$iqn" "$tag" "\${a##*/}"; done
  done
done
exit 0`.split('\n'),
);

/** The initiator names with a session on the target: demo-mode sessions and ACLs with an active session (one a line). */
export function lioSessionsArgv(iqn: string): string[] {
  return [
    'sh',
    '-c',
    'for t in /sys/kernel/config/target/iscsi/"$1"/tpgt_*; do [ -d "$t" ] || continue; cat "$t/dynamic_sessions" 2>/dev/null; echo; for a in "$t"/acls/*; do [ -r "$a/info" ] && ! grep -q "No active" "$a/info" && echo "${a##*/}"; done; done; exit 0',
    'target-sessions',
    iqn,
  ];
}

/** Read-only: every iblock backstore and iSCSI target of the server, one tab-separated line each. */
export function lioFactsArgv(): string[] {
  return ['sh', '-c', FACTS, 'lio-facts'];
}

export interface LioBackstore {
  hba: string;
  name: string;
  dev: string;
  serial: string;
}
export interface LioTpg {
  iqn: string;
  tag: number;
  enabled: boolean;
  attributes: Record<string, string>;
  portals: string[];
  luns: { lun: number; backstore: string }[];
  acls: string[];
}
export interface LioState {
  backstores: LioBackstore[];
  tpgs: LioTpg[];
}

export class LioFactsError extends Error {}

export function parseLioFacts(text: string): LioState {
  const state: LioState = { backstores: [], tpgs: [] };
  const tpg = (iqn: string, tag: string): LioTpg => {
    let t = state.tpgs.find((x) => x.iqn === iqn && x.tag === Number(tag));
    if (!t) {
      t = { iqn, tag: Number(tag), enabled: false, attributes: {}, portals: [], luns: [], acls: [] };
      state.tpgs.push(t);
    }
    return t;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const f = line.split('\t');
    switch (f[0]) {
      case 'error':
        throw new LioFactsError(f[1] ?? 'LIO facts failed');
      case 'so':
        state.backstores.push({ hba: f[1] ?? '', name: f[2] ?? '', dev: f[3] ?? '', serial: (f[4] ?? '').trim() });
        break;
      case 'tpg': {
        const t = tpg(f[1] ?? '', f[2] ?? '');
        t.enabled = (f[3] ?? '').trim() === '1';
        for (const kv of f.slice(4)) {
          const i = kv.indexOf('=');
          if (i > 0) t.attributes[kv.slice(0, i)] = kv.slice(i + 1).trim();
        }
        break;
      }
      case 'portal':
        tpg(f[1] ?? '', f[2] ?? '').portals.push(f[3] ?? '');
        break;
      case 'lun':
        tpg(f[1] ?? '', f[2] ?? '').luns.push({ lun: Number(f[3]), backstore: f[4] ?? '' });
        break;
      case 'acl':
        tpg(f[1] ?? '', f[2] ?? '').acls.push(f[3] ?? '');
        break;
      default:
        throw new LioFactsError(`unexpected LIO facts line: ${JSON.stringify(line.slice(0, 80))}`);
    }
  }
  return state;
}

/** What one volume looks like on one server. */
export interface LioVolume {
  name: string;
  dev: string;
  identity: Identity;
  iqn: string;
  /** This server's portal, "10.66.6.1:3260". */
  portal: string;
}

export interface LioVolumeState {
  backstore: LioBackstore | null;
  tpg: LioTpg | null;
}

export function lioVolumeState(s: LioState, name: string, iqn: string): LioVolumeState {
  return {
    backstore: s.backstores.find((b) => b.name === name) ?? null,
    tpg: s.tpgs.find((t) => t.iqn === iqn && t.tag === TPG) ?? null,
  };
}

/** Whether the server exports the volume exactly as wanted. */
export function lioMatches(st: LioVolumeState, v: LioVolume): boolean {
  const b = st.backstore;
  const t = st.tpg;
  if (!b || !t) return false;
  return (
    b.dev === v.dev &&
    b.serial.toLowerCase() === lioSerial(v.identity) &&
    t.enabled &&
    t.portals.includes(v.portal) &&
    !t.portals.includes('0.0.0.0:3260') &&
    t.luns.some((l) => l.lun === 0 && l.backstore === `${b.hba}/${b.name}`) &&
    Object.entries(OPEN_MODE).every(([k, val]) => t.attributes[k] === val)
  );
}

const cmd = (argv: string[], label: string): CommandAction => ({ kind: 'command', argv, label });

function splitPortal(p: string): [string, string] {
  const i = p.lastIndexOf(':');
  return [p.slice(0, i), p.slice(i + 1)];
}

/**
 * The targetcli commands that turn `st` into the wanted export (only the
 * missing parts). Throws when the server exports something else under this
 * name (another device or another identity): that is never silently replaced.
 */
export function lioExportActions(st: LioVolumeState, v: LioVolume): { actions: Action[]; createdBackstore: boolean; createdTarget: boolean } {
  const actions: Action[] = [];
  const serial = lioSerial(v.identity);
  const b = st.backstore;
  if (b) {
    if (b.dev !== v.dev) throw new Error(`backstore "${v.name}" exports ${b.dev || '(no device)'}, not ${v.dev}`);
    if (b.serial.toLowerCase() !== serial) {
      throw new Error(`backstore "${v.name}" has the identity (wwn) ${b.serial || '(none)'}, not the volume's ${serial}: a stale export of an earlier volume`);
    }
  } else {
    actions.push(cmd(['targetcli', '/backstores/block', 'create', `name=${v.name}`, `dev=${v.dev}`, `wwn=${serial}`], 'block backstore with the volume identity'));
  }
  const t = st.tpg;
  const tpgPath = `/iscsi/${v.iqn}/tpg${TPG}`;
  const [ip, port] = splitPortal(v.portal);
  if (!t) {
    actions.push(cmd(['targetcli', '/iscsi', 'create', v.iqn], 'iSCSI target'));
    actions.push(
      cmd(
        ['sh', '-c', `if [ -d "${CONFIGFS}/iscsi/$1/tpgt_${TPG}/np/0.0.0.0:3260" ]; then exec targetcli "/iscsi/$1/tpg${TPG}/portals" delete ip_address=0.0.0.0 ip_port=3260; fi`, 'drop-default-portal', v.iqn],
        'no portal on 0.0.0.0',
      ),
    );
    actions.push(cmd(['targetcli', `${tpgPath}/portals`, 'create', `ip_address=${ip}`, `ip_port=${port}`], 'portal on this server'));
    actions.push(cmd(['targetcli', `${tpgPath}/luns`, 'create', `storage_object=/backstores/block/${v.name}`, 'lun=0'], 'LUN 0'));
    actions.push(cmd(['targetcli', tpgPath, 'set', 'attribute', ...Object.entries(OPEN_MODE).map(([k, val]) => `${k}=${val}`)], 'open mode on the cluster network'));
  } else {
    const lun0 = t.luns.find((l) => l.lun === 0);
    if (lun0 && !lun0.backstore.endsWith(`/${v.name}`)) throw new Error(`target ${v.iqn} maps LUN 0 to ${lun0.backstore}, not to "${v.name}"`);
    if (t.portals.includes('0.0.0.0:3260') && v.portal !== '0.0.0.0:3260') {
      actions.push(cmd(['targetcli', `${tpgPath}/portals`, 'delete', 'ip_address=0.0.0.0', 'ip_port=3260'], 'no portal on 0.0.0.0'));
    }
    if (!t.portals.includes(v.portal)) actions.push(cmd(['targetcli', `${tpgPath}/portals`, 'create', `ip_address=${ip}`, `ip_port=${port}`], 'portal on this server'));
    if (!lun0) actions.push(cmd(['targetcli', `${tpgPath}/luns`, 'create', `storage_object=/backstores/block/${v.name}`, 'lun=0'], 'LUN 0'));
    if (!Object.entries(OPEN_MODE).every(([k, val]) => t.attributes[k] === val)) {
      actions.push(cmd(['targetcli', tpgPath, 'set', 'attribute', ...Object.entries(OPEN_MODE).map(([k, val]) => `${k}=${val}`)], 'open mode on the cluster network'));
    }
    if (!t.enabled) actions.push(cmd(['targetcli', tpgPath, 'enable'], 'enable the TPG'));
  }
  if (actions.length > 0) actions.push(saveconfig());
  return { actions, createdBackstore: !b, createdTarget: !t };
}

export function saveconfig(): CommandAction {
  return cmd(['targetcli', 'saveconfig'], 'persist the LIO configuration');
}

/**
 * Takes back a (possibly partial) export: one script that removes the target
 * and the backstore this run created if they are there, and persists only when
 * it removed something (so it runs no targetcli at all where nothing was made).
 */
export function lioUndoActions(st: { backstore: boolean; target: boolean }, name: string, iqn: string): Action[] {
  if (!st.target && !st.backstore) return [];
  const script = oneLine([
    'iqn=$1 name=$2 t=$3 b=$4 did=0',
    `if [ "$t" = 1 ] && [ -d "${CONFIGFS}/iscsi/$iqn" ]; then targetcli /iscsi delete "$iqn" || exit 1; did=1; fi`,
    `if [ "$b" = 1 ]; then for d in ${CONFIGFS}/core/iblock_*/"$name"; do if [ -d "$d" ]; then targetcli /backstores/block delete "$name" || exit 1; did=1; fi; done; fi`,
    'if [ "$did" = 1 ]; then targetcli saveconfig || exit 1; fi',
  ]);
  return [cmd(['sh', '-c', script, 'undo-export', iqn, name, st.target ? '1' : '0', st.backstore ? '1' : '0'], 'remove the target and backstore this run created, if they are there')];
}

/** Removes the volume's target and backstore (those that exist), then persists. */
export function lioRemoveActions(st: { backstore: boolean; target: boolean }, name: string, iqn: string): Action[] {
  const out: Action[] = [];
  if (st.target) out.push(cmd(['targetcli', '/iscsi', 'delete', iqn], 'remove the iSCSI target'));
  if (st.backstore) out.push(cmd(['targetcli', '/backstores/block', 'delete', name], 'remove the block backstore'));
  if (out.length > 0) out.push(saveconfig());
  return out;
}

/**
 * Whether a TPG admits initiators by ACL: not in demo mode
 * (generate_node_acls=0), or with ACLs listed (a site that names its
 * initiators names every one).
 */
export function lioUsesAcls(t: LioTpg): boolean {
  return t.attributes.generate_node_acls === '0' || t.acls.length > 0;
}

/**
 * The targetcli commands that add an initiator's ACL (all the TPG's LUNs
 * mapped, as targetcli does by default) to every TPG of the given targets that
 * admits initiators by ACL and has none for it; then one saveconfig. Nothing
 * else is changed: other ACLs, their mapped LUNs and credentials stay.
 * IQNs compare without case (RFC 3722).
 */
export function lioAddAclActions(tpgs: readonly LioTpg[], initiator: string): Action[] {
  const want = initiator.toLowerCase();
  const actions: Action[] = tpgs
    .filter((t) => lioUsesAcls(t) && !t.acls.some((a) => a.toLowerCase() === want))
    .map((t) => cmd(['targetcli', `/iscsi/${t.iqn}/tpg${t.tag}/acls`, 'create', initiator], `ACL of ${initiator}: the TPG admits initiators by ACL`));
  return actions.length > 0 ? [...actions, saveconfig()] : [];
}
