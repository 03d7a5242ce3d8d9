import type { Probe as EngineProbe } from '../engine/probe.js';
import { quote } from '../remote/quote.js';
import type { RunResult } from '../remote/types.js';
import { drbdChecks } from '../storage/drbd.js';
import { multipathArgv, parseMounts, parseMultipath, parseSessions, sessionsArgv, type MultipathMap, type Session } from '../storage/initiator.js';
import { SNAPSHOT_FIELDS, lvmFailure, lvsArgv, parseLvs, parseSnapshots, parseVgs, vgsArgv, type LvInfo, type SnapshotInfo, type VgInfo } from '../storage/lvm.js';
import { oneLine } from '../storage/shell.js';
import { lioFactsArgv, parseLioFacts, type LioState } from '../storage/targets/lio.js';
import { parseScstConf, readConfArgv, runningConfArgv, type ScstConf } from '../storage/targets/scst.js';

/**
 * The read-only commands doctor runs on the hosts, each with the parser that
 * turns its result into a typed fact. A parser throws ProbeError when the
 * command failed or printed something it cannot read: the check that needs
 * the fact reports it.
 */

/** An engine probe (argv and parser) with the name doctor's results are kept under. */
export interface Probe<T> extends EngineProbe<T> {
  /** Unique; several checks needing one probe run it once per host. */
  name: string;
}

export class ProbeError extends Error {}

/** The probe's command did not finish in time on its host (it was stopped there). */
export class ProbeTimeout extends ProbeError {}

/**
 * Seconds each probe may run on its host; then it is sent TERM, and KILL
 * KILL_AFTER_S later (`timeout` then ends too, even when the command stays
 * stuck in the kernel): one hung command (iscsiadm with iscsid stuck, a
 * multipath path checker on a dead path) is a finding for its checks, and
 * the host's other probes still run.
 */
export const PROBE_TIMEOUT_S = 10;
const KILL_AFTER_S = 2;

/** The argv a probe runs as on the host: under `timeout`. */
export function boundedArgv(argv: readonly string[]): string[] {
  return ['timeout', '--verbose', '-k', String(KILL_AFTER_S), String(PROBE_TIMEOUT_S), ...argv];
}

/** What `timeout --verbose` prints when it stopped the command. */
const STOPPED = /^timeout: sending signal \w+ to command /m;

/** A probe's command in messages: `iscsiadm -m session -P 3`, or a script's name. */
function commandOf(argv: readonly string[]): string {
  if (argv[0] === 'sh' && argv[1] === '-c') return argv[3] ?? 'sh -c …';
  return quote(argv);
}

/** Throws ProbeTimeout when the result is that of a command `timeout` stopped. */
export function notTimedOut(p: Probe<unknown>, r: RunResult): RunResult {
  if ((r.exitCode === 124 || r.exitCode === 137) && STOPPED.test(r.stderr)) {
    throw new ProbeTimeout(`${commandOf(p.argv)} did not finish within ${PROBE_TIMEOUT_S} s (stopped)`);
  }
  return r;
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).pop()?.trim() ?? '';
}

/** The command exited 0, or ProbeError naming it with the last line it printed on stderr. */
export function succeeded(what: string, r: RunResult): RunResult {
  if (r.exitCode !== 0) throw new ProbeError(`${what} failed (exit code ${r.exitCode})${lastLine(r.stderr) ? `: ${lastLine(r.stderr)}` : ''}`);
  return r;
}

function readJson(what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ProbeError(`${what}: the output is not JSON`);
  }
}

function rethrow<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ProbeError) throw e;
    throw new ProbeError(`${what}: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------- system and clock

export interface SystemFact {
  kernel: string;
  system: string;
}

export const systemProbe: Probe<SystemFact> = {
  name: 'system',
  argv: ['sh', '-c', 'uname -r; . /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown system}"'],
  parse(r) {
    const [kernel = '', system = ''] = succeeded('uname', r).stdout.split('\n').map((l) => l.trim());
    return { kernel, system };
  },
};

/** The host's clock, in seconds since the epoch. */
export const clockProbe: Probe<number> = {
  name: 'clock',
  argv: ['date', '+%s.%N'],
  parse(r) {
    const t = Number(succeeded('date', r).stdout.trim());
    if (!Number.isFinite(t) || t <= 0) throw new ProbeError(`date printed ${JSON.stringify(r.stdout.trim().slice(0, 40))}, not seconds since the epoch`);
    return t;
  },
};

// ---------------------------------------------------------------- network

export interface Interface {
  name: string;
  mtu: number;
  state: string;
  /** IPv4 addresses, "10.66.6.11". */
  addresses: string[];
}

interface IpAddrJson {
  ifname?: unknown;
  mtu?: unknown;
  operstate?: unknown;
  addr_info?: { family?: unknown; local?: unknown }[];
}

export const addrProbe: Probe<Interface[]> = {
  name: 'ip-addr',
  argv: ['ip', '-j', 'addr', 'show'],
  parse(r) {
    const doc = readJson('ip -j addr show', succeeded('ip addr', r).stdout);
    if (!Array.isArray(doc)) throw new ProbeError('ip -j addr show: expected a JSON array');
    return (doc as IpAddrJson[]).map((i) => ({
      name: String(i.ifname ?? '?'),
      mtu: Number(i.mtu ?? 0),
      state: String(i.operstate ?? ''),
      addresses: (i.addr_info ?? []).filter((a) => a.family === 'inet' && typeof a.local === 'string').map((a) => a.local as string),
    }));
  },
};

export interface Route {
  /** "default", "10.100.2.0/24", or a host address. */
  dst: string;
  gateway: string | null;
  dev: string;
}

export const routeProbe: Probe<Route[]> = {
  name: 'ip-route',
  argv: ['ip', '-j', '-4', 'route', 'show', 'table', 'main'],
  parse(r) {
    const doc = readJson('ip -j route show', succeeded('ip route', r).stdout);
    if (!Array.isArray(doc)) throw new ProbeError('ip -j route show: expected a JSON array');
    return (doc as Record<string, unknown>[]).map((x) => ({
      dst: String(x.dst ?? ''),
      gateway: typeof x.gateway === 'string' ? x.gateway : null,
      dev: String(x.dev ?? ''),
    }));
  },
};

// ---------------------------------------------------------------- NFS

export interface NfsEntry {
  source: string;
  target: string;
  fstype: string;
  options: string;
}

export interface NfsFact {
  /** Mounted now. */
  mounts: NfsEntry[];
  /** NFS lines of /etc/fstab (mounted at the next boot). */
  fstab: NfsEntry[];
  /** `proto`/`defaultproto` set in /etc/nfsmount.conf, lowercased ("udp"), or null. */
  confProto: string | null;
  /** The running kernel was built with CONFIG_NFS_DISABLE_UDP_SUPPORT=y (true), without (false), or its config is not readable (null). */
  udpDisabled: boolean | null;
}

const NFS_SCRIPT = oneLine([
  "echo '== mounts'; findmnt -rn -t nfs,nfs4 -o SOURCE,TARGET,FSTYPE,OPTIONS 2>/dev/null",
  "echo '== fstab'; [ -r /etc/fstab ] && awk '$1 !~ /^#/ && ($3 == \"nfs\" || $3 == \"nfs4\") {print $1, $2, $3, $4}' /etc/fstab",
  "echo '== conf'; [ -r /etc/nfsmount.conf ] && grep -iE '^[[:space:]]*(default)?proto[[:space:]]*=' /etc/nfsmount.conf",
  "echo '== kernel'; c=/boot/config-$(uname -r); if [ -r \"$c\" ]; then grep -c '^CONFIG_NFS_DISABLE_UDP_SUPPORT=y' \"$c\"; else echo unknown; fi",
  'exit 0',
]);

export const nfsProbe: Probe<NfsFact> = {
  name: 'nfs',
  argv: ['sh', '-c', NFS_SCRIPT, 'nfs-facts'],
  parse(r) {
    const sections = new Map<string, string[]>();
    let cur: string[] | null = null;
    for (const line of succeeded('the NFS facts script', r).stdout.split('\n')) {
      const m = /^== (\w+)$/.exec(line);
      if (m) sections.set(m[1] as string, (cur = []));
      else if (cur && line.trim() !== '') cur.push(line.trim());
    }
    const entries = (lines: string[]): NfsEntry[] =>
      parseMounts({ exitCode: 0, stdout: lines.join('\n'), stderr: '', durationMs: 0 }).map((m, i) => ({ ...m, options: lines[i]?.split(/\s+/)[3] ?? '' }));
    const conf = (sections.get('conf') ?? []).map((l) => /=\s*(\S+)/.exec(l)?.[1]?.toLowerCase()).filter((x): x is string => !!x);
    const kernel = (sections.get('kernel') ?? [])[0];
    return {
      mounts: entries(sections.get('mounts') ?? []),
      fstab: entries(sections.get('fstab') ?? []),
      confProto: conf[conf.length - 1] ?? null,
      udpDisabled: kernel === undefined || kernel === 'unknown' ? null : Number(kernel) > 0,
    };
  },
};

// ---------------------------------------------------------------- iSCSI initiator

export const sessionsProbe: Probe<Session[]> = {
  name: 'iscsi-sessions',
  argv: sessionsArgv(),
  parse: (r) => rethrow('iscsiadm', () => parseSessions(r)),
};

export const multipathProbe: Probe<MultipathMap[]> = {
  name: 'multipath',
  argv: multipathArgv(),
  parse: (r) => parseMultipath(succeeded('multipath -ll', r).stdout),
};

// ---------------------------------------------------------------- storage servers

export function drbdProbes(resource: string): [Probe<RunResult>, Probe<RunResult>, Probe<RunResult>] {
  const [role, cstate, dstate] = drbdChecks(resource) as [string[], string[], string[]];
  const raw = (name: string, argv: string[]): Probe<RunResult> => ({ name, argv, parse: (r) => r });
  return [raw('drbd-role', role), raw('drbd-cstate', cstate), raw('drbd-dstate', dstate)];
}

export function vgProbe(vg: string): Probe<VgInfo> {
  return {
    name: 'vgs',
    argv: vgsArgv(vg),
    parse(r) {
      if (r.exitCode !== 0) throw new ProbeError(lvmFailure(r, vg));
      const found = rethrow('vgs', () => parseVgs(r.stdout)).find((v) => v.name === vg);
      if (!found) throw new ProbeError(`volume group ${vg} not found`);
      return found;
    },
  };
}

export interface LvsFact {
  lvs: LvInfo[];
  snapshots: SnapshotInfo[];
}

export function lvsProbe(vg: string): Probe<LvsFact> {
  return {
    name: 'lvs',
    argv: lvsArgv(vg, SNAPSHOT_FIELDS),
    parse(r) {
      if (r.exitCode !== 0) throw new ProbeError(lvmFailure(r, vg));
      return rethrow('lvs', () => ({ lvs: parseLvs(r.stdout).filter((l) => l.vg === vg), snapshots: parseSnapshots(r.stdout) }));
    },
  };
}

export const scstFileProbe: Probe<ScstConf> = {
  name: 'scst-file',
  argv: readConfArgv(),
  parse: (r) => rethrow('/etc/scst.conf', () => parseScstConf(succeeded('reading /etc/scst.conf', r).stdout)),
};

export const scstRunningProbe: Probe<ScstConf> = {
  name: 'scst-running',
  argv: runningConfArgv(),
  parse: (r) => rethrow('the SCST configuration in force', () => parseScstConf(succeeded('scstadmin -write_config', r).stdout)),
};

export const lioProbe: Probe<LioState> = {
  name: 'lio',
  argv: lioFactsArgv(),
  parse: (r) => rethrow('LIO', () => parseLioFacts(succeeded('the LIO facts script', r).stdout)),
};

// ---------------------------------------------------------------- registry, from a worker

/** What a worker saw of the registry: a TLS handshake verified with the inventory's CA. */
export type RegistryFromHost =
  | { kind: 'no-openssl' }
  | { kind: 'unreachable'; reason: string }
  /** `verifyCode` 0 is trusted; 9 and 10 are "not yet valid" and "expired" (OpenSSL's X509_V_ERR codes). */
  | { kind: 'tls'; verifyCode: number; verifyText: string; subject: string; validTo: Date | null };

const REGISTRY_SCRIPT = oneLine([
  "command -v openssl >/dev/null 2>&1 || { echo '== no-openssl'; exit 0; }",
  'f=$(mktemp) || exit 125',
  "trap 'rm -f \"$f\"' EXIT",
  'printf \'%s\\n\' "$3" >"$f"',
  'case $2 in *[!0-9.]*) v="-servername $2 -verify_hostname $2" ;; *) v="-verify_ip $2" ;; esac',
  '[ -z "$3" ] || v="$v -CAfile $f"',
  'o=$(openssl s_client -connect "$1" $v </dev/null 2>&1); echo "== rc $?"',
  "printf '%s\\n' \"$o\" | grep -m1 '^Verify return code:'",
  "printf '%s\\n' \"$o\" | openssl x509 -noout -subject -enddate -nameopt RFC2253 2>/dev/null",
  "printf '%s\\n' \"$o\" | grep -m2 -E ':error:|errno='",
  'exit 0',
]);

const NET_ERROR = /Connection refused|Name or service not known|Temporary failure in name resolution|No route to host|Network is unreachable|Connection timed out|Connection reset by peer/;

/**
 * A TLS handshake with the registry from the host, as its kubelet pulls:
 * `openssl s_client`, verifying with the inventory's CA (its PEM text is an
 * argument: nothing is written on the host but a temporary file), or the
 * host's CAs when the inventory names none. `name` is the registry's host
 * name (or address), `hostPort` what to connect to.
 */
export function registryProbe(hostPort: string, name: string, caPem: string | null): Probe<RegistryFromHost> {
  return {
    name: 'registry-tls',
    argv: ['sh', '-c', REGISTRY_SCRIPT, 'registry-tls', hostPort, name, caPem ?? ''],
    parse(r) {
      const out = succeeded('the registry TLS script', r).stdout;
      if (/^== no-openssl$/m.test(out)) return { kind: 'no-openssl' };
      const rc = /^== rc (\d+)$/m.exec(out);
      if (!rc) throw new ProbeError('the registry TLS script printed no result');
      const verify = /^Verify return code: (\d+) \((.*)\)$/m.exec(out);
      if (!verify) {
        const err = out.split('\n').find((l) => /:error:|errno=/.test(l)) ?? '';
        return { kind: 'unreachable', reason: NET_ERROR.exec(err)?.[0] ?? (err.trim().slice(0, 160) || `openssl s_client exited with ${rc[1]}`) };
      }
      const end = /^notAfter=(.+)$/m.exec(out)?.[1];
      const validTo = end ? new Date(end) : null;
      return {
        kind: 'tls',
        verifyCode: Number(verify[1]),
        verifyText: verify[2] as string,
        subject: /^subject=(.*)$/m.exec(out)?.[1]?.trim() ?? '?',
        validTo: validTo && !Number.isNaN(validTo.getTime()) ? validTo : null,
      };
    },
  };
}
