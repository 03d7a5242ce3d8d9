import type { RunResult } from '../remote/types.js';
import { oneLine } from './shell.js';

/**
 * The workers' side as data: iscsiadm argv (discovery, login, logout, rescan,
 * node records) and parsers for `iscsiadm -m node`, `iscsiadm -m session -P 3`,
 * `multipath -ll`, `dmsetup info` and `findmnt`, plus the judgement "one
 * multipath map with two active paths for this target".
 */

/** iscsiadm exit codes (open-iscsi iscsi_err.h). */
export const ISCSI_ERR = { noObjsFound: 21, sessExists: 15 } as const;

export function discoveryArgv(portal: string): string[] {
  return ['iscsiadm', '-m', 'discovery', '-t', 'sendtargets', '-p', portal, '-o', 'new', '-o', 'update'];
}

/** Exits 0 when the node record (target, portal) exists, 21 when it does not. */
export function nodeRecordArgv(iqn: string, portal: string): string[] {
  return ['iscsiadm', '-m', 'node', '-T', iqn, '-p', portal, '-o', 'show'];
}

/**
 * Discovery on one portal, then the check that the target is now known
 * through it, in one remote command (one ssh round trip per portal: the
 * worker phase runs on every worker at once).
 */
export function discoverTargetArgv(iqn: string, portal: string): string[] {
  return ['sh', '-c', `${discoveryArgv('"$1"').join(' ')} && ${nodeRecordArgv('"$2"', '"$1"').join(' ')} >/dev/null`, 'discover', portal, iqn];
}

export function nodesArgv(): string[] {
  return ['iscsiadm', '-m', 'node'];
}

export function loginArgv(iqn: string, portal: string): string[] {
  return ['iscsiadm', '-m', 'node', '-T', iqn, '-p', portal, '--login'];
}

export function logoutArgv(iqn: string, portal: string): string[] {
  return ['iscsiadm', '-m', 'node', '-T', iqn, '-p', portal, '--logout'];
}

/** Flush a multipath map once udev has settled, if it is still there (multipathd removes it by itself, but not at once). */
export function flushMapArgv(map: string): string[] {
  return ['sh', '-c', 'udevadm settle --timeout=30; if dmsetup info "$1" >/dev/null 2>&1; then exec multipath -f "$1"; fi', 'flush-map', map];
}

export function rescanArgv(iqn: string, portal: string): string[] {
  return ['iscsiadm', '-m', 'node', '-T', iqn, '-p', portal, '--rescan'];
}

export function deleteNodeArgv(iqn: string): string[] {
  return ['iscsiadm', '-m', 'node', '-T', iqn, '-o', 'delete'];
}

export function sessionsArgv(): string[] {
  return ['iscsiadm', '-m', 'session', '-P', '3'];
}

/** This host's iSCSI initiator name (nothing when open-iscsi has none: such a host has no session). */
export function initiatorNameArgv(): string[] {
  return ['sh', '-c', 'sed -n "s/^InitiatorName=//p" /etc/iscsi/initiatorname.iscsi 2>/dev/null; exit 0', 'initiator-name'];
}

/** The initiator name from `initiatorNameArgv`, or null. */
export function parseInitiatorName(r: RunResult): string | null {
  const n = r.stdout.trim().split('\n')[0]?.trim() ?? '';
  return r.exitCode === 0 && n !== '' ? n : null;
}

export function multipathArgv(): string[] {
  return ['multipath', '-ll'];
}

export function dmOpenArgv(): string[] {
  return ['dmsetup', 'info', '-c', '--noheadings', '--separator', ' ', '-o', 'name,open'];
}

export function mountsArgv(): string[] {
  return ['findmnt', '-rn', '-o', 'SOURCE,TARGET,FSTYPE'];
}

export function resizeMapArgv(map: string): string[] {
  return ['multipathd', 'resize', 'map', map];
}

/**
 * Waits (up to `seconds`) until udev has settled and every SCSI disk of the
 * target's sessions sits in a multipath map, so that the check that follows
 * sees the final picture. Always exits 0: the check judges.
 */
export function waitForPathsArgv(iqn: string, seconds: number): string[] {
  const script = oneLine([
    'iqn=$1 n=$2 i=0',
    'while [ "$i" -lt "$n" ]; do',
    '  udevadm settle --timeout=10 >/dev/null 2>&1',
    '  disks=$(iscsiadm -m session -P 3 2>/dev/null | awk -v t="$iqn" \'/^Target: /{on=($2==t)} on && /Attached scsi disk/{print $4}\')',
    '  want=$(printf "%s\\n" $disks | grep -c .)',
    '  got=0',
    '  for d in $disks; do multipath -ll 2>/dev/null | grep -qE " $d +[0-9]+:[0-9]+ +active" && got=$((got + 1)); done',
    '  [ "$want" -gt 0 ] && [ "$got" -eq "$want" ] && exit 0',
    '  sleep 1; i=$((i + 1))',
    'done',
    'exit 0',
  ]);
  return ['sh', '-c', script, 'wait-for-paths', iqn, String(seconds)];
}

// ---------------------------------------------------------------- parsers

export interface NodeRecord {
  portal: string;
  tpgt: number;
  iqn: string;
}

/** `iscsiadm -m node`: "10.66.6.1:3260,1 iqn.2016-04.fr.enssib:mail"; exit 21 means no records. */
export function parseNodes(r: RunResult): NodeRecord[] {
  if (r.exitCode === ISCSI_ERR.noObjsFound) return [];
  if (r.exitCode !== 0) throw new Error(`iscsiadm -m node failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  const out: NodeRecord[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^\s*(\S+):(\d+),(-?\d+)\s+(\S+)\s*$/.exec(line);
    if (m) out.push({ portal: `${m[1]}:${m[2]}`, tpgt: Number(m[3]), iqn: m[4] as string });
  }
  return out;
}

export interface Session {
  iqn: string;
  /** "10.66.6.1:3260" */
  portal: string;
  sid: number | null;
  state: string;
  disks: { name: string; state: string }[];
}

/** `iscsiadm -m session -P 3`; exit 21 means no sessions. */
export function parseSessions(r: RunResult): Session[] {
  if (r.exitCode === ISCSI_ERR.noObjsFound) return [];
  if (r.exitCode !== 0) throw new Error(`iscsiadm -m session failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  const out: Session[] = [];
  let iqn = '';
  let cur: Session | null = null;
  for (const raw of r.stdout.split('\n')) {
    const line = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^Target:\s+(\S+)/.exec(line))) {
      iqn = m[1] as string;
      cur = null;
    } else if ((m = /^Current Portal:\s+(\S+?):(\d+),/.exec(line))) {
      cur = { iqn, portal: `${m[1]}:${m[2]}`, sid: null, state: '', disks: [] };
      out.push(cur);
    } else if (cur && (m = /^Persistent Portal:\s+(\S+?):(\d+),/.exec(line))) {
      // The portal the node record names (what enssib logs in to) — prefer it over the redirected one.
      cur.portal = `${m[1]}:${m[2]}`;
    } else if (cur && (m = /^SID:\s+(\d+)/.exec(line))) {
      cur.sid = Number(m[1]);
    } else if (cur && (m = /^iSCSI Session State:\s+(\S+)/.exec(line))) {
      cur.state = m[1] as string;
    } else if (cur && (m = /^Attached scsi disk\s+(\S+)\s+State:\s+(\S+)/.exec(line))) {
      cur.disks.push({ name: m[1] as string, state: m[2] as string });
    }
  }
  return out;
}

export interface MultipathPath {
  hcil: string;
  dev: string;
  /** device-mapper state: active / failed */
  dmState: string;
  /** path checker state: ready / faulty / ghost / shaky / i/o pending … */
  checker: string;
  /** SCSI device state: running / offline / … */
  devState: string;
}

export interface MultipathMap {
  name: string;
  wwid: string;
  dm: string;
  vendorProduct: string;
  size: string;
  paths: MultipathPath[];
}

/** `multipath -ll` (with or without user_friendly_names). */
export function parseMultipath(text: string): MultipathMap[] {
  const out: MultipathMap[] = [];
  let cur: MultipathMap | null = null;
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+(?:\((\S+)\)\s+)?(dm-\d+)\s*(.*)$/.exec(raw))) {
      cur = { name: m[1] as string, wwid: m[2] ?? (m[1] as string), dm: m[3] as string, vendorProduct: (m[4] ?? '').trim(), size: '', paths: [] };
      out.push(cur);
    } else if (cur && (m = /^size=(\S+)/.exec(raw))) {
      cur.size = m[1] as string;
    } else if (cur && (m = /(\d+:\d+:\d+:\d+)\s+(\S+)\s+\d+:\d+\s+(\S+)\s+(\S+)\s+(\S+)/.exec(raw))) {
      cur.paths.push({ hcil: m[1] as string, dev: m[2] as string, dmState: m[3] as string, checker: m[4] as string, devState: m[5] as string });
    }
  }
  return out;
}

/** `dmsetup info -c --noheadings --separator ' ' -o name,open`: map name → open count. "No devices found" → empty. */
export function parseDmOpen(r: RunResult): Map<string, number> {
  const m = new Map<string, number>();
  if (r.exitCode !== 0) return m;
  for (const line of r.stdout.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length === 2 && /^\d+$/.test(f[1] as string)) m.set(f[0] as string, Number(f[1]));
  }
  return m;
}

export interface Mount {
  source: string;
  target: string;
  fstype: string;
}

/** `findmnt -rn -o SOURCE,TARGET,FSTYPE` (raw: spaces escaped as \x20). */
export function parseMounts(r: RunResult): Mount[] {
  if (r.exitCode !== 0) return [];
  const unescape = (s: string) => s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 2)
    .map((f) => ({ source: unescape(f[0] as string), target: unescape(f[1] as string), fstype: f[2] ?? '' }));
}

// ---------------------------------------------------------------- judgement

export interface TargetPaths {
  iqn: string;
  sessions: Session[];
  /** Maps holding at least one disk of the target's sessions. */
  maps: MultipathMap[];
  /** Paths of those maps that belong to the target and are active+ready. */
  active: number;
  /** Disks of the target's sessions. */
  total: number;
}

export function targetPaths(iqn: string, sessions: Session[], maps: MultipathMap[]): TargetPaths {
  const mine = sessions.filter((s) => s.iqn === iqn);
  const disks = new Set(mine.flatMap((s) => s.disks.map((d) => d.name)));
  const inMaps = maps.filter((m) => m.paths.some((p) => disks.has(p.dev)));
  const active = inMaps.flatMap((m) => m.paths).filter((p) => disks.has(p.dev) && p.dmState === 'active' && p.checker === 'ready').length;
  return { iqn, sessions: mine, maps: inMaps, active, total: disks.size };
}

/**
 * "One multipath map with two active paths" for the target, logged in on
 * every portal: returns the map, or the problems in words.
 */
export function verifyPaths(iqn: string, portals: readonly string[], sessions: Session[], maps: MultipathMap[]): { ok: true; map: MultipathMap } | { ok: false; problems: string[] } {
  const tp = targetPaths(iqn, sessions, maps);
  const problems: string[] = [];
  for (const p of portals) {
    const s = tp.sessions.find((x) => x.portal === p);
    if (!s) problems.push(`no iSCSI session to ${iqn} through ${p}`);
    else if (s.disks.length === 0) problems.push(`the session through ${p} has no SCSI disk (LUN 0 not exported there?)`);
  }
  if (tp.maps.length === 0 && tp.total > 0) problems.push(`multipathd made no map for the disks ${[...new Set(tp.sessions.flatMap((s) => s.disks.map((d) => d.name)))].join(', ')}`);
  if (tp.maps.length > 1) {
    problems.push(
      `the paths form ${tp.maps.length} multipath maps (${tp.maps.map((m) => m.wwid).join(', ')}) instead of one: the storage servers present different device identities`,
    );
  }
  const map = tp.maps[0];
  if (map && tp.maps.length === 1) {
    const mine = new Set(tp.sessions.flatMap((s) => s.disks.map((d) => d.name)));
    const foreign = map.paths.filter((p) => !mine.has(p.dev));
    if (foreign.length > 0) problems.push(`map ${map.wwid} also holds ${foreign.map((p) => p.dev).join(', ')}, which belong to another target`);
    if (tp.active !== portals.length) {
      const bad = map.paths.filter((p) => !(p.dmState === 'active' && p.checker === 'ready')).map((p) => `${p.dev} ${p.dmState} ${p.checker}`);
      problems.push(`map ${map.wwid} has ${tp.active} active path(s), expected ${portals.length}${bad.length ? ` (${bad.join(', ')})` : ''}`);
    }
  }
  if (problems.length > 0 || !map) return { ok: false, problems: problems.length ? problems : ['no multipath map'] };
  return { ok: true, map };
}
