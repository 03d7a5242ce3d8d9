import type { RunResult } from '../remote/types.js';

/**
 * DRBD state as data. With dual-primary DRBD under LVM, a volume may be created,
 * resized or removed only while both storage servers are Primary, Connected and
 * UpToDate/UpToDate: anything else (a peer gone, a resync, StandAlone after a
 * split brain) is refused before anything changes.
 *
 * Works with the `drbdadm role|cstate|dstate <res>` output of DRBD 8.4
 * ("Primary/Primary", "Connected", "UpToDate/UpToDate") and of DRBD 9
 * ("Primary", one cstate line per peer, "UpToDate/UpToDate"), and with
 * /proc/drbd of 8.4.
 */

export interface DrbdState {
  /** Local role: Primary, Secondary, Unknown. */
  role: string;
  /** Peer roles, when the tool reports them (8.4: "Primary/Primary"). */
  peerRoles: string[];
  /** Connection states, one per peer. */
  cstates: string[];
  /** Local disk state. */
  disk: string;
  /** Peer disk states. */
  peerDisks: string[];
}

export function drbdChecks(resource: string): string[][] {
  return [
    ['drbdadm', 'role', resource],
    ['drbdadm', 'cstate', resource],
    ['drbdadm', 'dstate', resource],
  ];
}

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^(#|Warning|Deprecated|\s)/i.test(l));
}

/** Parses the three `drbdadm` outputs; null fields when a command failed. */
export function parseDrbdadm(role: RunResult, cstate: RunResult, dstate: RunResult): DrbdState | { error: string } {
  const failed = [role, cstate, dstate].find((r) => r.exitCode !== 0);
  if (failed) {
    const msg = failed.stderr.trim().split('\n').filter(Boolean).pop() ?? `exit code ${failed.exitCode}`;
    return { error: msg };
  }
  const [roleLine = ''] = lines(role.stdout);
  const [localRole = 'Unknown', ...peerRoles] = roleLine.split('/');
  const cstates = lines(cstate.stdout).flatMap((l) => l.split(/\s+/));
  const dLines = lines(dstate.stdout);
  const [localDisk = 'Unknown', ...peerDisks] = (dLines[0] ?? '').split('/');
  // DRBD 9 prints one "local/peer" line per peer: collect the peers of every line.
  for (const l of dLines.slice(1)) {
    const [, ...more] = l.split('/');
    peerDisks.push(...more);
  }
  return { role: localRole, peerRoles, cstates, disk: localDisk, peerDisks };
}

/** Parses one resource line of DRBD 8.4's /proc/drbd (" 0: cs:Connected ro:Primary/Primary ds:UpToDate/UpToDate C r-----"). */
export function parseProcDrbd(text: string, minor = 0): DrbdState | { error: string } {
  const re = new RegExp(`^\\s*${minor}:\\s+(.*)$`, 'm');
  const m = re.exec(text);
  if (!m) return { error: `no DRBD minor ${minor} in /proc/drbd` };
  const fields = Object.fromEntries((m[1] ?? '').split(/\s+/).filter((f) => f.includes(':')).map((f) => [f.slice(0, f.indexOf(':')), f.slice(f.indexOf(':') + 1)]));
  const [role = 'Unknown', ...peerRoles] = (fields.ro ?? '').split('/');
  const [disk = 'Unknown', ...peerDisks] = (fields.ds ?? '').split('/');
  return { role, peerRoles, cstates: fields.cs ? [fields.cs] : [], disk, peerDisks };
}

/**
 * What stops a volume change on this server, in words; [] when DRBD is healthy
 * for dual-primary use.
 */
export function drbdProblems(resource: string, s: DrbdState | { error: string }): string[] {
  if ('error' in s) return [`DRBD resource ${resource}: ${s.error}`];
  const out: string[] = [];
  const standalone = s.cstates.some((c) => c === 'StandAlone');
  if (standalone) {
    out.push(`DRBD resource ${resource} is StandAlone (disconnected from its peer, e.g. after a split brain): resolve it before changing volumes`);
  } else if (s.cstates.length === 0 || s.cstates.some((c) => c !== 'Connected')) {
    out.push(`DRBD resource ${resource} is ${s.cstates.join(', ') || 'not connected'}, not Connected`);
  }
  if (s.role !== 'Primary') out.push(`DRBD resource ${resource} is ${s.role} here; both storage servers must be Primary (dual-primary)`);
  const peerNotPrimary = s.peerRoles.filter((r) => r !== 'Primary');
  if (peerNotPrimary.length > 0) out.push(`the DRBD peer of ${resource} is ${peerNotPrimary.join(', ')}, not Primary`);
  if (s.disk !== 'UpToDate' || s.peerDisks.length === 0 || s.peerDisks.some((d) => d !== 'UpToDate')) {
    out.push(`DRBD disk state of ${resource} is ${[s.disk, ...s.peerDisks].join('/')}, not UpToDate/UpToDate`);
  }
  return out;
}
