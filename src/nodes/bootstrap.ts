import { createHash } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { addrProbe, routeProbe, type Interface, type Route } from '../doctor/probes.js';
import { probe, probePhase, probedFacts, readProbes, type FactsOf, type Probe } from '../engine/probe.js';
import { LOCAL, type Action, type CommandAction, type Finding, type Phase, type Plan, type TaskResult } from '../engine/types.js';
import { ConfigError, OperationError } from '../errors.js';
import type { Inventory } from '../inventory/inventory.js';
import type { HostData } from '../inventory/schema.js';
import { armRollbackArgv, disarmRollbackArgv, ROLLBACK_FIRED_EXIT } from '../remote/rollback.js';
import type { RunResult } from '../remote/types.js';
import { initiatorAclPhase } from './storage-acl.js';
import { parseSize, formatBytes } from '../validate.js';

/**
 * `enssib node bootstrap <worker>`: a new Debian worker prepared, routed and
 * joined, in phases that each read the host first and change only what
 * differs — a second run is "unchanged" throughout. `enssib node check` runs
 * the same phases' checks only (a server dry run) and reports the drift.
 */

/** The files the plan writes whose text comes from templates/node/ (read by the use case). */
export interface NodeTemplates {
  multipath: string;
  nfsmount: string;
  containerd: string;
  network: string;
}

/** The join secret, read from a master and handed to the join: never printed, never journaled. */
export interface JoinSecret {
  endpoint: string;
  token: string;
  caCertHash: string;
}

/** The Kubernetes side of the join: labels and taints on the node, then wait until it is Ready. */
export interface NodeApi {
  /** Whether the node already has these labels and taints and is Ready (for "unchanged"). */
  settled(name: string, labels: Record<string, string>, taints: Taint[]): Promise<boolean>;
  label(name: string, labels: Record<string, string>, taints: Taint[]): Promise<void>;
  waitReady(name: string, timeoutS: number, signal?: AbortSignal): Promise<void>;
}

export interface Taint {
  key: string;
  value: string;
  effect: string;
}

export interface BootstrapInput {
  inv: Inventory;
  name: string;
  templates: NodeTemplates;
  /** The apt repository's signing key (the inventory's nodes.apt.key, read by the use case). */
  aptKey: Buffer;
  /** The registry's CA certificate (registry.ca), when the inventory names one. */
  registryCa: string | null;
  /** enssib's clock in ms since the epoch, for the skew check. */
  now: () => number;
  /** Seconds to wait for the node to be Ready. */
  readyTimeoutS: number;
  /** The checks only (`node check`): the join is not refused for want of a token. */
  check?: boolean;
  /** How the join phase reaches the API server (absent: `node check`, which reads hosts only). */
  api?: () => Promise<NodeApi>;
}

export const KEYRING = '/etc/apt/keyrings/enssib-kubernetes';
export const APT_LIST = '/etc/apt/sources.list.d/enssib-kubernetes.list';
export const MODULES_FILE = '/etc/modules-load.d/enssib.conf';
export const SYSCTL_FILE = '/etc/sysctl.d/90-enssib.conf';
export const NETWORK_FILE = '/etc/systemd/network/05-enssib-cluster.network';
/** Where systemd-networkd does not manage the cluster interface (ifupdown, NetworkManager): enssib's own unit sets MTU and routes at boot. */
export const NETWORK_UNIT = 'enssib-cluster-network.service';
export const NETWORK_UNIT_FILE = `/etc/systemd/system/${NETWORK_UNIT}`;
export const INITIATOR_FILE = '/etc/iscsi/initiatorname.iscsi';
export const MULTIPATH_FILE = '/etc/multipath.conf';
export const NFSMOUNT_FILE = '/etc/nfsmount.conf';
export const CONTAINERD_FILE = '/etc/containerd/config.toml';
export const KUBELET_CONF = '/etc/kubernetes/kubelet.conf';

export const MODULES = ['br_netfilter', 'overlay', 'iscsi_tcp', 'dm_multipath'] as const;
export const SYSCTLS: readonly [string, string][] = [
  ['net.ipv4.ip_forward', '1'],
  ['net.bridge.bridge-nf-call-iptables', '1'],
];
export const PACKAGES = ['containerd', 'runc', 'open-iscsi', 'multipath-tools', 'nfs-common', 'netbase', 'kubelet', 'kubeadm'] as const;
/** What must be on a fresh Debian before anything is installed. */
export const BINARIES = ['apt-get', 'dpkg-query', 'systemctl', 'ip', 'ss', 'modprobe', 'sysctl', 'sha256sum', 'swapoff'] as const;
/** Ports kubelet and kube-proxy listen on: free on a worker not joined yet. */
export const PORTS = [10250, 10256] as const;
/** NFS over TCP, failover-friendly: a hard mount that gives the VIP 10 s per try, 3 tries before "not responding", then goes on trying. */
const NFS_TIMEO = 100;
const NFS_RETRANS = 3;
/** Seconds before a network change that cut enssib's ssh connection is undone on the host. */
export const NETWORK_ROLLBACK_S = 120;

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/** The sha256 of a file on the host, or null when it does not exist. */
export function fileHashProbe(path: string): Probe<string | null> {
  return probe(['sh', '-c', 'if [ -e "$1" ]; then sha256sum < "$1"; fi', 'enssib-hash', path], (r) => {
    if (r.exitCode !== 0) throw new OperationError(`cannot read ${path}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return r.stdout.trim().split(/\s+/)[0] || null;
  });
}

/** A file action only where the host's copy differs (so a re-run is unchanged). */
function fileIfChanged(hash: string | null | undefined, path: string, content: string | Buffer, extra: { mode?: string; notify?: string[]; label?: string } = {}): Action[] {
  if (hash !== undefined && hash === sha256(content)) return [];
  return [{ kind: 'file', file: { path, content, mode: extra.mode ?? '0644' }, ...(extra.notify ? { notify: extra.notify } : {}), ...(extra.label ? { label: extra.label } : {}) }];
}

const lines = (r: RunResult) => r.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '');
const ok = (r: RunResult, what: string) => {
  if (r.exitCode !== 0) throw new OperationError(`${what} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n')[0] ?? ''}`);
  return r;
};

// ---------------------------------------------------------------- 1 facts

export interface OsFacts {
  id: string;
  version: string;
  pretty: string;
}

export function parseOsRelease(text: string): OsFacts {
  const v = (k: string) => new RegExp(`^${k}=("?)(.*)\\1$`, 'm').exec(text)?.[2] ?? '';
  return { id: v('ID'), version: v('VERSION_ID'), pretty: v('PRETTY_NAME') || v('ID') || 'unknown' };
}

export function parseMemTotal(text: string): number {
  const kb = Number(/^MemTotal:\s+(\d+)\s*kB/m.exec(text)?.[1]);
  if (!Number.isFinite(kb)) throw new OperationError('/proc/meminfo has no MemTotal line');
  return kb * 1024;
}

const factProbes = {
  os: probe(['cat', '/etc/os-release'], (r) => parseOsRelease(ok(r, 'reading /etc/os-release').stdout)),
  arch: probe(['dpkg', '--print-architecture'], (r) => (r.exitCode === 0 ? r.stdout.trim() : null)),
  memory: probe(['cat', '/proc/meminfo'], (r) => parseMemTotal(ok(r, 'reading /proc/meminfo').stdout)),
  cpus: probe(['nproc'], (r) => Number(ok(r, 'nproc').stdout.trim())),
  hostname: probe(['hostname'], (r) => ok(r, 'hostname').stdout.trim()),
  clock: probe(['date', '+%s.%N'], (r) => Number(ok(r, 'date').stdout.trim()) * 1000),
};
export type NodeFacts = FactsOf<typeof factProbes>;

const finding = (host: string, check: string, found: string, why: string, fix: string[], severity: Finding['severity'] = 'error'): Finding => ({ severity, host, check, found, why, fix });

/**
 * How far a clock read on a host is from this machine's: the host read it
 * between `from` (the probes sent) and `to` (their answer back), so only what
 * lies outside that window is skew — a slow link is not a wrong clock.
 */
export function clockSkewMs(remoteMs: number, window: { from: number; to: number }): number {
  if (remoteMs < window.from) return window.from - remoteMs;
  if (remoteMs > window.to) return remoteMs - window.to;
  return Number.isFinite(remoteMs) ? 0 : Infinity;
}

/** Judges the facts against the inventory's minimums: findings, an error refuses the host. `now`: this machine's clock when the facts were asked and when they came back. */
export function judgeFacts(inv: Inventory, host: string, f: NodeFacts, now: { from: number; to: number }): Finding[] {
  const out: Finding[] = [];
  const min = inv.data.nodes?.minimum ?? {};
  if (f.os.id !== 'debian') out.push(finding(host, 'facts', `the OS is ${f.os.pretty}, not Debian`, 'enssib prepares Debian workers only: package names, file locations and the kernel it checks are Debian\'s', ['Install Debian 12 (bookworm) or later on the worker.']));
  if (f.arch && !['amd64', 'arm64'].includes(f.arch)) out.push(finding(host, 'facts', `architecture ${f.arch}`, 'kubelet and kubeadm are published for amd64 and arm64 only', ['Use an amd64 or arm64 machine.']));
  if (min.memory && f.memory < parseSize(min.memory, 'nodes.minimum.memory') * 0.95) {
    out.push(finding(host, 'facts', `${formatBytes(f.memory)} of memory, below the minimum ${min.memory}`, 'a worker below the minimum runs out of memory under the pods the cluster gives it', ['Add memory, or lower nodes.minimum.memory in the inventory.']));
  }
  if (min.cpus && f.cpus < min.cpus) out.push(finding(host, 'facts', `${f.cpus} CPU${f.cpus === 1 ? '' : 's'}, below the minimum ${min.cpus}`, 'kubeadm and the pods need the CPUs the inventory asks for', ['Use a bigger machine, or lower nodes.minimum.cpus.']));
  const maxSkew = (inv.data.nodes?.maxClockSkew ?? 2) * 1000;
  const skew = clockSkewMs(f.clock, now);
  if (!(skew <= maxSkew)) out.push(finding(host, 'facts', `its clock is ${(skew / 1000).toFixed(1)} s away from this machine's`, 'certificates and tokens are refused by a node whose clock is off, and the join fails', ['Run NTP on the worker (apt-get install systemd-timesyncd), then run again.']));
  return out;
}

function factsPhase(i: BootstrapInput): Phase {
  // when the probes were handed to the engine (it sends them right away): the clock check's window opens there
  const asked = new Map<string, number>();
  return probePhase({
    id: 'facts',
    title: `gather the facts of ${i.name}: Debian release, architecture, memory and CPUs, hostname, clock`,
    hosts: [i.name],
    probes: (h) => {
      if (!asked.has(h)) asked.set(h, i.now());
      return factProbes;
    },
    verify: (h, raw) => {
      const to = i.now();
      return judgeFacts(i.inv, h, readProbes(factProbes, raw), { from: asked.get(h) ?? to, to });
    },
    plan: (h, f) => (f && f.hostname === h ? [] : [{ kind: 'command', argv: ['hostnamectl', 'set-hostname', h], label: f ? `if the hostname is not ${h} (it is ${f.hostname})` : `if the hostname is not ${h}` }]),
  });
}

// ---------------------------------------------------------------- 2 preflight

/** Active swap devices from /proc/swaps. */
export function parseSwaps(text: string): string[] {
  return text.split('\n').slice(1).map((l) => l.trim().split(/\s+/)[0] ?? '').filter((d) => d !== '');
}

/** The fstab lines that mount swap and are not commented out. */
export function fstabSwapLines(text: string): string[] {
  return text.split('\n').filter((l) => !/^\s*#/.test(l) && l.trim().split(/\s+/)[2] === 'swap');
}

/** Listening TCP ports from `ss -Htln`. */
export function parseListening(text: string): number[] {
  return text
    .split('\n')
    .map((l) => Number(/:(\d+)\s/.exec(`${l.trim().split(/\s+/)[3] ?? ''} `)?.[1]))
    .filter((p) => Number.isInteger(p));
}

const preflightProbes = {
  swaps: probe(['cat', '/proc/swaps'], (r) => parseSwaps(ok(r, 'reading /proc/swaps').stdout)),
  fstab: probe(['cat', '/etc/fstab'], (r) => (r.exitCode === 0 ? fstabSwapLines(r.stdout) : [])),
  missing: probe(['sh', '-c', 'for b; do command -v "$b" >/dev/null 2>&1 || echo "$b"; done', 'enssib-which', ...BINARIES], (r) => lines(r)),
  listening: probe(['sh', '-c', 'ss -Htln 2>/dev/null || true'], (r) => parseListening(r.stdout)),
  joined: probe(['test', '-e', KUBELET_CONF], (r) => r.exitCode === 0),
};

/** The sed that comments out the swap lines of /etc/fstab, so that swap stays off after a reboot. */
export const FSTAB_SWAP_OFF = ['sed', '-i', '-E', 's/^([^#[:space:]][^[:space:]]*[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]].*)$/# swap off for kubelet (enssib): \\1/', '/etc/fstab'];

function preflightPhase(i: BootstrapInput): Phase {
  return probePhase({
    id: 'preflight',
    title: 'preflight: swap off and kept off, required programs, kubelet ports free',
    hosts: [i.name],
    probes: () => preflightProbes,
    verify: (h, raw) => {
      const f = readProbes(preflightProbes, raw);
      const out: Finding[] = [];
      if (f.missing.length > 0) out.push(finding(h, 'preflight', `missing program${f.missing.length === 1 ? '' : 's'}: ${f.missing.join(', ')}`, 'the bootstrap runs them', [`apt-get install the packages that provide ${f.missing.join(', ')} (iproute2, procps, kmod, coreutils), then run again.`]));
      const busy = f.joined ? [] : PORTS.filter((p) => f.listening.includes(p));
      if (busy.length > 0) out.push(finding(h, 'preflight', `port${busy.length === 1 ? '' : 's'} ${busy.join(', ')} already in use on a worker that is not joined`, 'kubelet and kube-proxy listen there', [`ss -tlnp | grep -E ':(${busy.join('|')}) ' on ${h}: stop what listens there.`]));
      return out;
    },
    plan: (_h, f) => [
      ...(!f || f.swaps.length > 0 ? [{ kind: 'command' as const, argv: ['swapoff', '-a'], label: f ? `swap is on (${f.swaps.join(', ')})` : 'if swap is on' }] : []),
      ...(!f || f.fstab.length > 0 ? [{ kind: 'command' as const, argv: FSTAB_SWAP_OFF, label: f ? 'keep swap off after a reboot' : 'if /etc/fstab mounts swap' }] : []),
    ],
  });
}

// ---------------------------------------------------------------- 3 packages

/**
 * Installed packages from `dpkg-query -W -f '${Package} ${db:Status-Abbrev}\n'`:
 * the second letter is the package's state ("ii" installed, "hi" installed and
 * held, as kubelet and kubeadm are after the first run).
 */
export function parseInstalled(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((w) => w[1]?.[1] === 'i')
    .map((w) => (w[0] ?? '').split(':')[0] ?? '');
}

export function aptSource(inv: Inventory, aptKey: Buffer): { keyring: string; list: string } {
  const apt = inv.data.nodes?.apt;
  if (!apt) throw new ConfigError(`${inv.file} has no nodes.apt: the apt repository of kubelet and kubeadm and its signing key`, ['See `enssib help inventory`, field "nodes".']);
  const keyring = `${KEYRING}.${aptKey.subarray(0, 64).toString('latin1').includes('-----BEGIN PGP') ? 'asc' : 'gpg'}`;
  const suite = apt.suite ?? '/';
  const list = `# Written by enssib node bootstrap (inventory nodes.apt)\ndeb [signed-by=${keyring}] ${apt.url} ${suite}${(apt.components ?? []).map((c) => ` ${c}`).join('')}\n`;
  return { keyring, list };
}

function packagesPhase(i: BootstrapInput): Phase {
  const { keyring, list } = aptSource(i.inv, i.aptKey);
  return probePhase({
    id: 'packages',
    title: 'packages: containerd, runc, open-iscsi, multipath-tools, nfs-common, netbase; kubelet and kubeadm from the inventory\'s apt repository',
    hosts: [i.name],
    probes: () => ({
      installed: probe(['sh', '-c', 'dpkg-query -W -f \'${Package} ${db:Status-Abbrev}\\n\' "$@" 2>/dev/null; true', 'enssib-dpkg', ...PACKAGES], (r) => parseInstalled(r.stdout)),
      key: fileHashProbe(keyring),
      list: fileHashProbe(APT_LIST),
      containerd: probe(['systemctl', 'is-active', 'containerd'], (r) => r.stdout.trim() === 'active'),
    }),
    plan: (_h, f) => {
      const missing = f ? PACKAGES.filter((p) => !f.installed.includes(p)) : [...PACKAGES];
      const files = [
        ...fileIfChanged(f?.key, keyring, i.aptKey, { label: 'the apt signing key of the Kubernetes repository' }),
        ...fileIfChanged(f?.list, APT_LIST, list, { label: 'the Kubernetes apt repository' }),
      ];
      const out: Action[] = [...files];
      if (files.length > 0 || missing.length > 0) out.push({ kind: 'command', argv: ['apt-get', 'update', '-q'], label: 'read the repositories', timeoutMs: 600_000 });
      if (missing.length > 0) {
        out.push({ kind: 'command', argv: ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-q', '--no-install-recommends', ...missing], label: f ? 'install what is missing' : 'install what is missing of these', timeoutMs: 1_800_000 });
        if (missing.some((p) => p === 'kubelet' || p === 'kubeadm')) out.push({ kind: 'command', argv: ['apt-mark', 'hold', 'kubelet', 'kubeadm'], label: 'upgraded by an admin, not by apt upgrade' });
      }
      if (!f?.containerd) out.push({ kind: 'command', argv: ['systemctl', 'enable', '--now', 'containerd'], label: f ? 'containerd is not running' : 'if containerd is not running' });
      return out;
    },
  });
}

// ---------------------------------------------------------------- 4 kernel modules and sysctls

export const modulesText = `# Written by enssib node bootstrap: loaded at every boot\n${MODULES.join('\n')}\n`;
export const sysctlText = `# Written by enssib node bootstrap: pods are routed and bridged traffic goes through iptables\n${SYSCTLS.map(([k, v]) => `${k} = ${v}`).join('\n')}\n`;

function kernelPhase(i: BootstrapInput): Phase {
  return probePhase({
    id: 'kernel',
    title: `kernel: modules ${MODULES.join(', ')} and sysctls ${SYSCTLS.map(([k]) => k).join(', ')}, persisted`,
    hosts: [i.name],
    probes: () => ({
      notLoaded: probe(['sh', '-c', 'for m; do [ -d "/sys/module/$m" ] || echo "$m"; done', 'enssib-modules', ...MODULES], (r) => lines(r)),
      sysctls: probe(['sh', '-c', 'for k; do printf "%s=%s\\n" "$k" "$(sysctl -n "$k" 2>/dev/null)"; done', 'enssib-sysctl', ...SYSCTLS.map(([k]) => k)], (r) => Object.fromEntries(lines(r).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))),
      modulesFile: fileHashProbe(MODULES_FILE),
      sysctlFile: fileHashProbe(SYSCTL_FILE),
    }),
    plan: (_h, f) => {
      const load = f ? f.notLoaded : [...MODULES];
      const wrong = f ? SYSCTLS.filter(([k, v]) => f.sysctls[k] !== v) : SYSCTLS;
      return [
        ...fileIfChanged(f?.modulesFile, MODULES_FILE, modulesText),
        ...fileIfChanged(f?.sysctlFile, SYSCTL_FILE, sysctlText),
        ...(load.length > 0 ? [{ kind: 'command' as const, argv: ['sh', '-c', 'for m; do modprobe "$m" || exit; done', 'enssib-modprobe', ...load], label: f ? 'load the modules now' : 'load the modules that are not loaded' }] : []),
        ...(wrong.length > 0 ? [{ kind: 'command' as const, argv: ['sysctl', '-q', '-p', SYSCTL_FILE], label: f ? 'apply the sysctls now' : 'if a sysctl differs' }] : []),
      ];
    },
  });
}

// ---------------------------------------------------------------- 5 network

/** The cluster interface's settings as the inventory wants them on a worker. */
export interface WorkerNetwork {
  interface: string;
  mtu: number;
  address: string;
  prefix: number;
  gateway: string;
  /** Other workers' pod /24 → that worker's address. */
  podRoutes: { dst: string; via: string; worker: string }[];
}

export function workerNetwork(inv: Inventory, host: string): WorkerNetwork {
  const d = inv.data;
  if (!d.nodes) throw new ConfigError(`${inv.file} has no nodes block: the cluster interface of the workers (nodes.interface) is not known`, ['See `enssib help inventory`, field "nodes".']);
  const gateway = d.nodes.gateway ?? d.nfs?.vip;
  if (!gateway) throw new ConfigError(`${inv.file} names no gateway for the workers: set nodes.gateway (the keepalived-vip host) or nfs.vip`);
  return {
    interface: d.nodes.interface,
    mtu: d.networks.cluster.mtu,
    address: inv.host(host).address,
    prefix: ipaddr.IPv4.parseCIDR(d.networks.cluster.cidr)[1],
    gateway,
    podRoutes: inv
      .workers()
      .filter((w): w is HostData & { podSubnet: string } => w.name !== host && !!w.podSubnet)
      .map((w) => ({ dst: w.podSubnet, via: w.address, worker: w.name })),
  };
}

export function renderNetwork(template: string, host: string, n: WorkerNetwork): string {
  const routes = n.podRoutes.map((r) => `\n[Route]\n# ${r.worker}'s pods\nDestination=${r.dst}\nGateway=${r.via}`).join('\n');
  return fill(template, { host, interface: n.interface, mtu: String(n.mtu), address: `${n.address}/${n.prefix}`, gateway: n.gateway, routes });
}

/** Fills {{name}} placeholders; every placeholder must be given. */
export function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    const v = values[k];
    if (v === undefined) throw new ConfigError(`template placeholder {{${k}}} has no value`);
    return v;
  });
}

const routeCmd = (dst: string, via: string, dev: string): string[] => ['ip', 'route', 'replace', dst, 'via', via, 'dev', dev];

/** The routes among `want` that are missing or go another way. */
export function routesToSet<W extends { dst: string; via: string }>(routes: Route[], want: W[], dev: string): W[] {
  return want.filter((w) => {
    const same = routes.filter((r) => r.dst === w.dst);
    return same.length !== 1 || same[0]?.gateway !== w.via || same[0]?.dev !== dev;
  });
}

/**
 * The unit that sets the cluster interface's MTU and routes at every boot on a
 * host where systemd-networkd does not manage it; the interface's address and
 * the rest of its configuration stay with whatever manages it.
 */
export function renderNetworkUnit(host: string, n: WorkerNetwork): string {
  const ip = (args: string) => `ExecStart=ip ${args}`;
  return [
    `# Written by \`enssib node bootstrap\` for ${host}: the cluster network's MTU, the`,
    '# default route through the keepalived-vip host and one route to each other',
    "# worker's pod /24, set at every boot (systemd-networkd does not manage",
    `# ${n.interface} here; its address stays with what configures it).`,
    '[Unit]',
    `Description=enssib: MTU and routes of the cluster network (${n.interface})`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    ip(`link set dev ${n.interface} mtu ${n.mtu}`),
    ip(`route replace default via ${n.gateway} dev ${n.interface}`),
    ...n.podRoutes.flatMap((r) => [`# ${r.worker}'s pods`, ip(`route replace ${r.dst} via ${r.via} dev ${n.interface}`)]),
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** Whether systemd-networkd manages the interface (else enssib's unit keeps its settings), and whether that unit is enabled. */
export function keeperProbe(dev: string): Probe<{ networkd: boolean; unitEnabled: boolean }> {
  return probe(
    ['sh', '-c', 'if systemctl is-active --quiet systemd-networkd 2>/dev/null && networkctl list --no-legend "$1" 2>/dev/null | grep -qv unmanaged; then echo networkd; else echo other; fi; systemctl is-enabled "$2" 2>/dev/null; true', 'enssib-keeper', dev, NETWORK_UNIT],
    (r) => {
      const [keeper, enabled] = lines(r);
      return { networkd: keeper === 'networkd', unitEnabled: enabled === 'enabled' };
    },
  );
}

const networkProbes = (dev: string) => ({
  links: addrProbe as Probe<Interface[]>,
  routes: routeProbe as Probe<Route[]>,
  file: fileHashProbe(NETWORK_FILE),
  unit: fileHashProbe(NETWORK_UNIT_FILE),
  keeper: keeperProbe(dev),
});

/**
 * What keeps the settings across reboots: the systemd-networkd file where
 * networkd manages the interface, else enssib's oneshot unit (written, then
 * enabled). A client dry run shows both, each with its condition. Only files
 * enssib writes are touched.
 */
function persistActions(f: FactsOf<ReturnType<typeof networkProbes>> | null, host: string, n: WorkerNetwork, template: string): Action[] {
  const networkd = () => fileIfChanged(f?.file, NETWORK_FILE, renderNetwork(template, host, n), { label: f ? 'keep it across reboots (systemd-networkd manages the interface)' : `if systemd-networkd manages ${n.interface}: keep it across reboots` });
  const unit = () => {
    const file = fileIfChanged(f?.unit, NETWORK_UNIT_FILE, renderNetworkUnit(host, n), { label: f ? `keep it across reboots (systemd-networkd does not manage ${n.interface})` : `if systemd-networkd does not manage ${n.interface}: keep it across reboots` });
    return [
      ...file,
      ...(file.length > 0 ? [{ kind: 'command' as const, argv: ['systemctl', 'daemon-reload'], label: f ? 'the unit changed' : 'if the unit changed' }] : []),
      ...(!f?.keeper.unitEnabled ? [{ kind: 'command' as const, argv: ['systemctl', 'enable', NETWORK_UNIT], label: f ? 'run it at every boot' : 'if the unit is not enabled' }] : []),
    ];
  };
  if (!f) return [...networkd(), ...unit()];
  return f.keeper.networkd ? networkd() : unit();
}

function networkPhase(i: BootstrapInput): Phase {
  const n = workerNetwork(i.inv, i.name);
  const probes = networkProbes(n.interface);
  return probePhase({
    id: 'network',
    title: `network: MTU ${n.mtu} on ${n.interface}, default route via ${n.gateway}, routes to the other workers' pod /24s, persisted`,
    hosts: [i.name],
    probes: () => probes,
    verify: (h, raw) => {
      const f = readProbes(probes, raw);
      const out: Finding[] = [];
      if (!f.links.some((l) => l.name === n.interface)) out.push(finding(h, 'network', `no interface ${n.interface}`, 'the inventory says the cluster network is on it (nodes.interface)', [`ip link on ${h}; set nodes.interface to the cluster interface.`]));
      return out;
    },
    plan: (_h, f) => {
      const link = f?.links.find((l) => l.name === n.interface);
      const mtu = !f || link?.mtu !== n.mtu;
      const defaults = f?.routes.filter((r) => r.dst === 'default') ?? [];
      const gw = !f || defaults.length !== 1 || defaults[0]?.gateway !== n.gateway || defaults[0]?.dev !== n.interface;
      const pods = f ? routesToSet(f.routes, n.podRoutes, n.interface) : n.podRoutes;
      const out: Action[] = [];
      // MTU and the default route can cut enssib's own ssh connection: a timer on the host puts them back unless enssib reconnects
      const risky = mtu || gw;
      if (risky) {
        const old = defaults[0];
        const undo = [
          ...(link && mtu ? [`ip link set dev ${n.interface} mtu ${link.mtu}`] : []),
          ...(old && gw ? [`ip route replace default ${old.gateway ? `via ${old.gateway} ` : ''}dev ${old.dev}`] : []),
        ];
        out.push({ kind: 'command', argv: armRollbackArgv('network', NETWORK_ROLLBACK_S, ['sh', '-c', undo.join('; ') || 'true']), label: `put the MTU and default route back in ${NETWORK_ROLLBACK_S} s unless enssib reconnects` });
      }
      if (mtu) out.push({ kind: 'command', argv: ['ip', 'link', 'set', 'dev', n.interface, 'mtu', String(n.mtu)], label: f ? `MTU ${link?.mtu ?? '?'} → ${n.mtu}` : `if the MTU is not ${n.mtu}` });
      if (gw) out.push({ kind: 'command', argv: ['ip', 'route', 'replace', 'default', 'via', n.gateway, 'dev', n.interface], label: f ? 'the default route goes through the keepalived-vip host' : `if the default route is not via ${n.gateway}` });
      if (risky) {
        out.push({ kind: 'command', argv: disarmRollbackArgv('network'), reconnect: true, label: `over a new connection: the change kept ssh working (exit ${ROLLBACK_FIRED_EXIT}: the timer had fired and put it back)` });
      }
      for (const r of pods) out.push({ kind: 'command', argv: routeCmd(r.dst, r.via, n.interface), label: f ? `${r.worker}'s pods` : `if the route to ${r.worker}'s pods is missing` });
      out.push(...persistActions(f, i.name, n, i.templates.network));
      return out;
    },
  });
}

/**
 * The fan-out: every existing worker gets one route to the new worker's pod
 * /24, applied and persisted. A worker that is down is reported (partial
 * failure) with the command to run later; the others are not held back.
 */
function fanOutPhase(i: BootstrapInput): Phase | null {
  const me = i.inv.host(i.name);
  const others = i.inv.workers().filter((w) => w.name !== i.name);
  if (!me.podSubnet || others.length === 0) return null;
  const dst = me.podSubnet;
  return probePhase({
    id: 'fan-out',
    title: `route ${dst} (${i.name}'s pods) on every other worker, persisted`,
    hosts: others.map((w) => w.name),
    continueOnError: true,
    probes: (h) => networkProbes(workerNetwork(i.inv, h).interface),
    plan: (h, f) => {
      const n = workerNetwork(i.inv, h);
      const route = f ? routesToSet(f.routes, [{ dst, via: me.address }], n.interface) : [{ dst, via: me.address }];
      return [
        ...route.map((r) => ({ kind: 'command' as const, argv: routeCmd(r.dst, r.via, n.interface), label: f ? `${i.name}'s pods` : `if the route to ${i.name}'s pods is missing` })),
        ...persistActions(f, h, n, i.templates.network),
      ];
    },
  });
}

/** What to run later on a worker the fan-out could not reach. */
export function fanOutLater(inv: Inventory, name: string, worker: string): string[] {
  const me = inv.host(name);
  const dev = inv.data.nodes?.interface ?? '<interface>';
  return [`enssib node bootstrap ${name} --yes     (again, once ${worker} is back: only what is missing is done)`, `or on ${worker}: ip route replace ${me.podSubnet ?? '<pod subnet>'} via ${me.address} dev ${dev}`];
}

// ---------------------------------------------------------------- 6 storage initiator

/** Whether the running kernel can mount NFS over UDP: false when built with CONFIG_NFS_DISABLE_UDP_SUPPORT=y, null when its config is not readable. */
export function parseUdpSupport(text: string): boolean | null {
  const t = text.trim();
  if (t === '' || t === 'unknown') return null;
  return !/^CONFIG_NFS_DISABLE_UDP_SUPPORT=y$/m.test(t);
}

export function renderNfsmount(template: string, inv: Inventory): string {
  const proto = inv.data.nfs?.protocol ?? 'tcp';
  return fill(template, {
    vip: inv.data.nfs?.vip ?? '(no nfs.vip)',
    proto,
    timeo: String(NFS_TIMEO),
    retrans: String(NFS_RETRANS),
    why: proto === 'tcp' ? 'TCP: Debian 12 kernels cannot mount NFS over UDP (CONFIG_NFS_DISABLE_UDP_SUPPORT=y).' : 'UDP, as the inventory says (nfs.protocol): this needs MTU 9000 on the cluster network.',
  });
}

export function initiatorName(inv: Inventory, host: string): string {
  return `${inv.data.storage.iqnPrefix}:${host}`;
}

const KERNEL_CONFIG = 'f=/boot/config-$(uname -r); if [ -r "$f" ]; then grep "^CONFIG_NFS_DISABLE_UDP_SUPPORT=" "$f"; elif [ -r /proc/config.gz ]; then zcat /proc/config.gz | grep "^CONFIG_NFS_DISABLE_UDP_SUPPORT="; else echo unknown; fi; true';

/** Refuses NFS over UDP where it cannot work or is not safe. */
export function judgeNfs(inv: Inventory, host: string, udp: boolean | null): Finding[] {
  if ((inv.data.nfs?.protocol ?? 'tcp') !== 'udp') return [];
  if (udp === false) {
    return [
      finding(host, 'storage', 'nfs.protocol is udp, but this kernel is built with CONFIG_NFS_DISABLE_UDP_SUPPORT=y', 'every NFS mount over UDP fails on it (Debian 12 and later turned NFS over UDP off); the site chose UDP because TCP sessions hung on failover, which the hard, short-timeout TCP options of nfsmount.conf address', [
        'Set nfs.protocol: tcp in the inventory (the default), or run a kernel built without CONFIG_NFS_DISABLE_UDP_SUPPORT.',
      ]),
    ];
  }
  if (inv.data.networks.cluster.mtu !== 9000) {
    return [finding(host, 'storage', `nfs.protocol is udp with MTU ${inv.data.networks.cluster.mtu}`, 'NFS over UDP corrupts data on a gigabit link without MTU 9000', ['Set networks.cluster.mtu: 9000, or nfs.protocol: tcp.'])];
  }
  return udp === null ? [finding(host, 'storage', 'the kernel configuration is not readable (/boot/config-*, /proc/config.gz)', 'enssib cannot tell whether this kernel mounts NFS over UDP', ['Check that a test mount over UDP works before relying on it.'], 'warning')] : [];
}

function storagePhase(i: BootstrapInput): Phase {
  const name = initiatorName(i.inv, i.name);
  const initiator = `# Written by enssib node bootstrap: one name per worker\nInitiatorName=${name}\n`;
  const nfsmount = renderNfsmount(i.templates.nfsmount, i.inv);
  const probes = {
    initiator: fileHashProbe(INITIATOR_FILE),
    multipath: fileHashProbe(MULTIPATH_FILE),
    nfsmount: fileHashProbe(NFSMOUNT_FILE),
    udp: probe(['sh', '-c', KERNEL_CONFIG], (r) => parseUdpSupport(r.stdout)),
  };
  return probePhase({
    id: 'storage',
    title: `storage initiator: InitiatorName ${name}, multipath.conf, nfsmount.conf (NFS v3 over ${i.inv.data.nfs?.protocol ?? 'tcp'})`,
    hosts: [i.name],
    probes: () => probes,
    verify: (h, raw) => judgeNfs(i.inv, h, readProbes(probes, raw).udp),
    plan: (_h, f) => [
      ...fileIfChanged(f?.initiator, INITIATOR_FILE, initiator, { notify: ['iscsid'] }),
      ...fileIfChanged(f?.multipath, MULTIPATH_FILE, i.templates.multipath, { notify: ['multipathd'] }),
      ...fileIfChanged(f?.nfsmount, NFSMOUNT_FILE, nfsmount),
    ],
    handlers: {
      iscsid: () => [{ kind: 'command', argv: ['systemctl', 'restart', 'iscsid'], label: 'the initiator name changed' }],
      multipathd: () => [{ kind: 'command', argv: ['systemctl', 'restart', 'multipathd'], label: 'multipath.conf changed' }],
    },
  });
}

// ---------------------------------------------------------------- 7 registry trust

export function registryCaPath(inv: Inventory): string {
  return `/etc/containerd/certs.d/${inv.data.registry.host}/ca.crt`;
}

function registryPhase(i: BootstrapInput): Phase {
  const caPath = registryCaPath(i.inv);
  return probePhase({
    id: 'registry',
    title: `containerd: systemd cgroups, and the registry ${i.inv.data.registry.host} trusted${i.registryCa ? ' (its CA)' : ''}`,
    hosts: [i.name],
    probes: () => ({ config: fileHashProbe(CONTAINERD_FILE), ...(i.registryCa ? { ca: fileHashProbe(caPath) } : {}) }),
    plan: (_h, f) => [
      ...fileIfChanged(f?.config, CONTAINERD_FILE, i.templates.containerd, { notify: ['containerd'] }),
      ...(i.registryCa ? fileIfChanged(f ? (f.ca ?? null) : undefined, caPath, i.registryCa, { notify: ['containerd'], label: "the registry's CA" }) : []),
    ],
    handlers: { containerd: () => [{ kind: 'command', argv: ['systemctl', 'restart', 'containerd'], label: 'its configuration changed' }] },
  });
}

// ---------------------------------------------------------------- 8 join

/** The parts of `kubeadm token create --print-join-command`'s output. */
export function parseJoinCommand(text: string): JoinSecret {
  const line = text.split('\n').find((l) => l.trim().startsWith('kubeadm join')) ?? '';
  const endpoint = /^kubeadm join\s+(\S+)/.exec(line.trim())?.[1];
  const token = /--token\s+(\S+)/.exec(line)?.[1];
  const caCertHash = /--discovery-token-ca-cert-hash\s+(\S+)/.exec(line)?.[1];
  if (!endpoint || !token || !caCertHash) throw new OperationError('the master printed no join command (kubeadm token create --print-join-command)');
  if (!/^[a-z0-9]{6}\.[a-z0-9]{16}$/.test(token) || !/^sha256:[a-f0-9]{64}$/.test(caCertHash) || !/^[A-Za-z0-9.:[\]-]+$/.test(endpoint)) throw new OperationError('the join command the master printed is not in the form kubeadm prints');
  return { endpoint, token, caCertHash };
}

/** Runs kubeadm join with the token and hash read from stdin: they never appear in a command line enssib shows or journals. */
export const JOIN_SCRIPT = 'read -r t; read -r h; exec kubeadm join "$1" --token "$t" --discovery-token-ca-cert-hash "$h" --node-name "$2"';

export function parseTaint(t: string): Taint {
  const [kv, effect] = [t.slice(0, t.lastIndexOf(':')), t.slice(t.lastIndexOf(':') + 1)];
  const eq = kv.indexOf('=');
  return { key: eq < 0 ? kv : kv.slice(0, eq), value: eq < 0 ? '' : kv.slice(eq + 1), effect };
}

const joinedProbe = probe(['test', '-e', KUBELET_CONF], (r) => r.exitCode === 0);

function joinPhases(i: BootstrapInput): Phase[] {
  const master = i.inv.masters()[0];
  if (!master) throw new ConfigError(`${i.inv.file} has no master: the join token comes from one`);
  const secret: { value: JoinSecret | null } = { value: null };
  const me = i.inv.host(i.name);
  const labels = me.labels ?? {};
  const taints = (me.taints ?? []).map(parseTaint);
  const joinedEarlier = (state: Parameters<NonNullable<Phase['plan']>>[2]) => probedFacts(state, 'preflight', i.name, preflightProbes)?.joined;
  const phases: Phase[] = [
    {
      id: 'join-token',
      title: `a join token from ${master.name}, valid 15 minutes (never shown)`,
      hosts: [master.name],
      plan: (_h, _f, state) =>
        joinedEarlier(state) === true
          ? []
          : [
              {
                kind: 'command',
                argv: ['kubeadm', 'token', 'create', '--print-join-command', '--ttl', '15m'],
                label: `if ${i.name} is not joined`,
                quiet: true,
                result: (r) => {
                  secret.value = parseJoinCommand(r.stdout);
                },
              } satisfies CommandAction,
            ],
    },
    probePhase({
      id: 'join',
      title: `kubeadm join ${i.name}, unless ${KUBELET_CONF} exists`,
      hosts: [i.name],
      probes: () => ({ joined: joinedProbe }),
      plan: (h, f) => {
        if (f?.joined) return [];
        const s = secret.value;
        if (f && !s && !i.check) throw new OperationError(`no join token was read from ${master.name}`);
        return [{ kind: 'command', argv: ['sh', '-c', JOIN_SCRIPT, 'enssib-join', s?.endpoint ?? '<the API endpoint the master prints>', h], input: s ? `${s.token}\n${s.caCertHash}\n` : '<token>\n<hash>\n', label: f ? 'the token and hash on stdin' : `if ${h} is not joined; the token and hash on stdin`, timeoutMs: 600_000 }];
      },
    }),
  ];
  if (i.api) {
    const api = i.api;
    const shown = [...Object.entries(labels).map(([k, v]) => `${k}=${v}`), ...(me.taints ?? [])].join(' ') || 'none';
    phases.push({
      id: 'ready',
      title: `labels and taints on ${i.name} (${shown}), then wait until it is Ready (${i.readyTimeoutS} s at most)`,
      hosts: [LOCAL],
      plan: () => [
        {
          kind: 'task',
          label: `Node ${i.name}: labels and taints, Ready`,
          lines: [`server-side apply of Node ${i.name} (field manager enssib): labels ${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(', ') || 'none'}; taints ${(me.taints ?? []).join(', ') || 'none'}`, `wait for condition Ready=True (${i.readyTimeoutS} s at most)`],
          run: async (): Promise<TaskResult> => {
            const k = await api();
            if (await k.settled(i.name, labels, taints)) return { changed: false };
            await k.label(i.name, labels, taints);
            await k.waitReady(i.name, i.readyTimeoutS);
            return { changed: true, message: `${i.name} is Ready` };
          },
        },
      ],
    });
  }
  return phases;
}

// ---------------------------------------------------------------- the plan

/** The bootstrap plan of one worker already in the inventory. */
export function bootstrapPlan(i: BootstrapInput): Plan {
  const w = i.inv.host(i.name);
  if (!w.roles.includes('worker')) throw new ConfigError(`"${i.name}" is not a worker in ${i.inv.file} (roles: ${w.roles.join(', ')})`);
  const fan = fanOutPhase(i);
  const acl = initiatorAclPhase(i.inv, initiatorName(i.inv, i.name));
  return {
    title: `bootstrap worker ${i.name}`,
    mutating: true,
    prefetch: [...new Set([...(fan?.hosts ?? []), ...(acl?.hosts ?? []), ...i.inv.masters().slice(0, 1).map((m) => m.name)])],
    phases: [factsPhase(i), preflightPhase(i), packagesPhase(i), kernelPhase(i), networkPhase(i), ...(fan ? [fan] : []), storagePhase(i), ...(acl ? [acl] : []), registryPhase(i), ...joinPhases(i)],
  };
}

/** What `node check` read of the Node from the API server: what differs from the inventory, or why it was not read. */
export type ClusterView = { drift: string[] } | { notChecked: string };

/**
 * The phases `node check` reports: every phase's checks — on the worker, the
 * fan-out on the other workers, the initiator on the storage servers — and,
 * with the cluster's view, the Node's labels, taints and Ready (not the token).
 */
export function checkPlan(i: BootstrapInput, cluster?: ClusterView): Plan {
  const { api: _api, ...rest } = i;
  const p = bootstrapPlan({ ...rest, check: true });
  const node: Phase[] =
    cluster && 'drift' in cluster
      ? [
          {
            id: 'ready',
            title: `Node ${i.name} in the cluster: the inventory's labels and taints, Ready`,
            hosts: [LOCAL],
            plan: () =>
              cluster.drift.length === 0
                ? []
                : [{ kind: 'task', label: `Node ${i.name}: ${cluster.drift.join('; ')}`, lines: cluster.drift, run: () => Promise.reject(new OperationError('internal: node check changes nothing')) }],
          },
        ]
      : [];
  const phases = [...p.phases.filter((ph) => ph.id !== 'join-token'), ...node];
  return { ...p, title: `check worker ${i.name}`, mutating: false, readOnly: true, prefetch: [], phases: phases.map((ph) => ({ ...ph, independent: true })) };
}
