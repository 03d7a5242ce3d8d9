import type { RunResult } from '../remote/types.js';
import { probe } from '../engine/probe.js';
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

/** The disks of `iqn`'s sessions in `iscsiadm -m session -P 3` output (stdin), one a line. */
const TARGET_DISKS = 'awk -v t="$iqn" \'/^Target: /{on=($2==t)} on && /Attached scsi disk/{print $4}\'';
/** From `multipath -ll` (stdin) and the disks in $disks: "ready" when each disk is an active path, then the names of the maps holding them. */
const MAPS_OF_DISKS =
  'awk -v ds="$disks" \'BEGIN{n=split(ds,a,/[ \\n]+/); for(i=1;i<=n;i++) if(a[i]!="") {w[a[i]]=1; want++}} / dm-[0-9]+ /{m=$1; next} {for(i=1;i<NF;i++) if($i in w){if($(i+2)=="active") got++; if(!(m in seen)){seen[m]=1; maps=maps" "m}}} END{if(want>0 && got==want) printf "ready"; print maps}\'';

/**
 * The check of a new volume's paths on one worker, as one remote script (one
 * round trip): log in through `portals` (those without a session already —
 * kubelet's stay untouched), wait (up to about `seconds`) until udev has
 * settled and every SCSI disk of the target's sessions is an active path of a
 * multipath map, print the sessions and the maps it saw last (framed, see
 * parseCheckPaths), and log out of the sessions it opened whatever happens (a
 * failure, an interruption). With `flush` (no session to the target was there
 * before), the target's maps are then flushed once udev has settled, if
 * multipathd has not removed them yet. Exit codes: a failed login's own; 3
 * when a logout or a flush failed (what stays is said on stderr).
 */
export function checkPathsArgv(iqn: string, portals: readonly string[], seconds: number, flush: boolean): string[] {
  const script = oneLine([
    'iqn=$1 n=$2 flush=$3 i=0 mine="" maps=""',
    'shift 3',
    'bye() {',
    '  st=$1; trap - EXIT',
    '  for p in $mine; do',
    '    iscsiadm -m node -T "$iqn" -p "$p" --logout >/dev/null; rc=$?',
    `    if [ "$rc" -ne 0 ] && [ "$rc" -ne ${ISCSI_ERR.noObjsFound} ]; then echo "could not log out of $iqn through $p (iscsiadm exit $rc): the session stays" >&2; [ "$st" -ne 0 ] || st=3; fi`,
    '  done',
    '  if [ -n "$mine" ] && [ "$flush" = 1 ] && [ -n "$maps" ]; then',
    '    udevadm settle --timeout=30 >/dev/null 2>&1',
    '    for m in $maps; do',
    '      if dmsetup info "$m" >/dev/null 2>&1 && ! multipath -f "$m" >/dev/null 2>&1; then echo "could not flush the multipath map $m after the logout: it stays" >&2; [ "$st" -ne 0 ] || st=3; fi',
    '    done',
    '  fi',
    '  exit "$st"',
    '}',
    "trap 'bye $?' EXIT",
    "trap 'exit 130' HUP INT TERM",
    'for p do',
    '  iscsiadm -m node -T "$iqn" -p "$p" --login >/dev/null; rc=$?',
    '  if [ "$rc" -eq 0 ]; then mine="$mine $p"',
    `  elif [ "$rc" -ne ${ISCSI_ERR.sessExists} ]; then exit "$rc"`,
    '  fi',
    'done',
    'while :; do',
    '  udevadm settle --timeout=10 >/dev/null 2>&1',
    '  sess=$(iscsiadm -m session -P 3 2>&1); src=$?',
    '  mp=$(multipath -ll 2>&1); mrc=$?',
    `  disks=$(printf "%s\\n" "$sess" | ${TARGET_DISKS})`,
    `  found=$(printf "%s\\n" "$mp" | ${MAPS_OF_DISKS})`,
    '  maps=${found#ready}',
    '  i=$((i + 1))',
    '  if [ "$found" != "$maps" ] || [ "$i" -ge "$n" ]; then break; fi',
    '  sleep 1',
    'done',
    'printf "=== sessions\\n%s\\n=== exit %s\\n=== multipath\\n%s\\n=== exit %s\\n" "$sess" "$src" "$mp" "$mrc"',
  ]);
  return ['sh', '-c', script, 'check-paths', iqn, String(seconds), flush ? '1' : '0', ...portals];
}

/** The sessions and multipath reports that checkPathsArgv printed, as the results of the two commands. */
export function parseCheckPaths(stdout: string): { sessions: RunResult; multipath: RunResult } | null {
  const part = (name: string): RunResult | null => {
    const m = new RegExp(`^=== ${name}\\n([\\s\\S]*?)\\n=== exit (\\d+)$`, 'm').exec(stdout);
    if (!m) return null;
    const text = m[1] as string;
    return { exitCode: Number(m[2]), stdout: text, stderr: text, durationMs: 0 };
  };
  const sessions = part('sessions');
  const multipath = part('multipath');
  return sessions && multipath ? { sessions, multipath } : null;
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

/** What a worker holds, as typed probes: a phase picks those it needs (`{ sessions, maps } = workerProbes`). */
export const workerProbes = {
  sessions: probe(sessionsArgv(), parseSessions),
  maps: probe(multipathArgv(), (r) => parseMultipath(r.stdout)),
  dmOpen: probe(dmOpenArgv(), parseDmOpen),
  mounts: probe(mountsArgv(), parseMounts),
  nodes: probe(nodesArgv(), parseNodes),
  initiator: probe(initiatorNameArgv(), parseInitiatorName),
};
