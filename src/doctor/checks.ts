import type Ipaddr from 'ipaddr.js';
import { couldNotRun, ok, problem, type Finding } from '../engine/findings.js';
import { splitHost } from '../images/registry.js';
import type { HostData } from '../inventory/schema.js';
import type { RunResult } from '../remote/types.js';
import { parseDrbdadm } from '../storage/drbd.js';
import { exportPresent, exportTrace } from '../storage/exports.js';
import { VOLUME_TAG, identityFromTags, scstIdentity, lioSerial, type Identity } from '../storage/identity.js';
import { verifyPaths } from '../storage/initiator.js';
import { lioVolumeState } from '../storage/targets/lio.js';
import { SCST_CONF, unsafeDevices, volumeState } from '../storage/targets/scst.js';
import { iqnOf, type StorageFacts, type VolumeSite } from '../storage/volume.js';
import { requireCjs } from '../require.js';
import { formatBytes } from '../validate.js';
import { fact, judgeHost, type Gathered } from './facts.js';
import {
  addrProbe,
  clockProbe,
  drbdProbes,
  lioProbe,
  lvsProbe,
  multipathProbe,
  nfsProbe,
  registryProbe,
  routeProbe,
  scstFileProbe,
  scstRunningProbe,
  sessionsProbe,
  systemProbe,
  vgProbe,
  type Probe,
  type RegistryFromHost,
} from './probes.js';

/**
 * The checks doctor runs on the hosts: which hosts, which probes, and the
 * judgement — pure functions from the gathered facts to findings.
 */

export interface DoctorSite {
  hosts: HostData[];
  storage: VolumeSite;
  clusterMtu: number;
  podsCidr: string;
  /** The keepalived host every worker routes through (nodes.gateway, else nfs.vip), or null when the inventory has none. */
  gateway: string | null;
  nfsProtocol: 'tcp' | 'udp';
  /** The registry the workers pull from (`name:port`) and the inventory's CA: its PEM text, why it cannot be read, or null (the system's CAs). */
  registry: { host: string; ca: { pem: string } | { error: string } | null };
}

export interface HostCheck {
  id: string;
  summary: string;
  /** Which inventory hosts it looks at. */
  on: 'all' | 'storage' | 'workers';
  probes(site: DoctorSite): Probe<unknown>[];
  /** Findings for `hosts` (the checked hosts in its scope); may read other checked hosts' facts. */
  judge(site: DoctorSite, g: Gathered, hosts: string[]): Finding[];
}

const perHost = (check: string, hosts: string[], fn: (host: string) => Finding[]): Finding[] => hosts.flatMap((h) => judgeHost(check, h, () => fn(h)));

const addressOf = (site: DoctorSite, host: string): string => site.hosts.find((h) => h.name === host)?.address ?? '';

// ---------------------------------------------------------------- ssh

const HOST_KEY = /host key .* (unknown|changed)/i;

export const sshCheck: HostCheck = {
  id: 'ssh',
  summary: 'every host answers over ssh and its host key is known',
  on: 'all',
  probes: () => [systemProbe],
  judge: (_site, g, hosts) =>
    hosts.flatMap((h) => {
      const u = g[h]?.unreachable;
      if (u) {
        const key = HOST_KEY.test(u.message);
        return [
          problem(
          'fail',
          'ssh',
          h,
          u.message,
          'enssib reaches every host over ssh: nothing can be checked or changed there',
          key
            ? `Check the host's key fingerprint on its console, then add it to known_hosts (ssh-keyscan ${h}); enssib never turns host-key checking off.`
            : `Check that ${h} is up and sshd runs, and that ssh reaches it (ssh -v ${h}).`,
          ),
        ];
      }
      return judgeHost('ssh', h, () => {
        const s = fact(g, h, systemProbe);
        return [ok('ssh', h, `reachable, host key known; ${s.system}, kernel ${s.kernel}`)];
      });
    }),
};

// ---------------------------------------------------------------- clock

/** Skew above which the API server's leases and etcd complain. */
export const CLOCK_WARN_S = 1;
/** Skew above which tokens, certificates and logs go wrong. */
export const CLOCK_FAIL_S = 30;

export const clockCheck: HostCheck = {
  id: 'clock',
  summary: 'clock skew between hosts',
  on: 'all',
  probes: () => [clockProbe],
  judge(_site, g, hosts) {
    // Each host's offset from this machine's clock, ± half the round trip of the probe.
    const offsets = new Map<string, { offset: number; error: number }>();
    const out: Finding[] = [];
    for (const h of hosts) {
      out.push(
        ...judgeHost('clock', h, () => {
          const t = fact(g, h, clockProbe);
          const run = g[h];
          const r = run?.results[clockProbe.name] as RunResult;
          const at = run?.clockAt;
          if (at === undefined) return [couldNotRun('clock', h, 'the time of the answer was not recorded')];
          offsets.set(h, { offset: t - (at - r.durationMs / 2) / 1000, error: r.durationMs / 2000 });
          return [];
        }),
      );
    }
    const sorted = [...offsets.values()].map((o) => o.offset).sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
    for (const [h, o] of offsets) {
      const skew = Math.max(0, Math.abs(o.offset - median) - o.error);
      const shown = `${(o.offset - median >= 0 ? '+' : '-') + Math.abs(o.offset - median).toFixed(2)} s from the other hosts' median (±${o.error.toFixed(2)} s)`;
      if (skew < CLOCK_WARN_S) out.push(ok('clock', h, `clock ${shown}`));
      else {
        out.push(
          problem(
            skew >= CLOCK_FAIL_S ? 'fail' : 'warn',
            'clock',
            h,
            `clock ${shown}`,
            'etcd and the API server need clocks within a second; beyond that leases, tokens and certificates misbehave and logs cannot be correlated',
            `Check the time service on ${h} (timedatectl timesync-status, or chronyc tracking) and that it reaches its NTP servers.`,
          ),
        );
      }
    }
    return out;
  },
};

// ---------------------------------------------------------------- DRBD

const SYNCING = /^(SyncSource|SyncTarget|PausedSyncS|PausedSyncT|StartingSyncS|StartingSyncT|WFBitMapS|WFBitMapT|WFSyncUUID)$/;

export const drbdCheck: HostCheck = {
  id: 'drbd',
  summary: 'DRBD connected, UpToDate on both sides, no split brain, both storage servers Primary',
  on: 'storage',
  probes: (site) => drbdProbes(site.storage.drbd),
  judge: (site, g, hosts) =>
    perHost('drbd', hosts, (h) => {
      const res = site.storage.drbd;
      const [role, cstate, dstate] = drbdProbes(res).map((p) => fact(g, h, p)) as [RunResult, RunResult, RunResult];
      const s = parseDrbdadm(role, cstate, dstate);
      const fix = `Read the kernel log on ${h} (dmesg | grep drbd) and drbdadm status ${res}.`;
      if ('error' in s) return [problem('fail', 'drbd', h, `drbdadm: ${s.error}`, 'the volume group lives on this DRBD resource: without it no volume is served from here', fix)];
      const out: Finding[] = [];
      const syncing = s.cstates.length > 0 && s.cstates.every((c) => c === 'Connected' || SYNCING.test(c));
      if (s.cstates.includes('StandAlone')) {
        out.push(
          problem(
            'fail',
            'drbd',
            h,
            `resource ${res} is StandAlone: disconnected from its peer (split brain, or a manual disconnect)`,
            'the two storage servers no longer replicate: each exports volumes whose writes the other does not see, and the data diverges',
            `Look for "Split-Brain detected" in dmesg on both servers. Choose the server whose changes are lost; there: drbdadm disconnect ${res}; drbdadm secondary ${res}; drbdadm connect --discard-my-data ${res}; on the other: drbdadm connect ${res}.`,
          ),
        );
      } else if (s.cstates.length === 0 || !s.cstates.every((c) => c === 'Connected')) {
        out.push(
          problem(
            syncing ? 'warn' : 'fail',
            'drbd',
            h,
            `resource ${res} is ${s.cstates.join(', ') || 'not connected'}, not Connected`,
            syncing ? 'a resynchronisation is running: the peer is not a full copy until it ends' : 'the peer does not receive the writes made here: a failover loses them',
            syncing ? `Wait for the resync to finish (drbdadm status ${res}); do not fail over meanwhile.` : fix,
          ),
        );
      }
      const disks = [s.disk, ...s.peerDisks];
      if (s.disk !== 'UpToDate' || s.peerDisks.length === 0 || s.peerDisks.some((d) => d !== 'UpToDate')) {
        out.push(
          problem(
            syncing ? 'warn' : 'fail',
            'drbd',
            h,
            `disk states ${disks.join('/')}, not UpToDate/UpToDate`,
            'a side that is not UpToDate does not hold the current data: serving or failing over to it loses writes',
            syncing ? `Wait for the resync to finish (drbdadm status ${res}).` : fix,
          ),
        );
      }
      if (s.role !== 'Primary') {
        out.push(
          problem(
            'fail',
            'drbd',
            h,
            `${h} is ${s.role} for ${res}; the inventory's layout has every storage server Primary (dual-primary)`,
            `every volume is exported by both storage servers: a Secondary cannot open the volume group, so its exports give I/O errors`,
            `drbdadm primary ${res} on ${h} once it is Connected and UpToDate.`,
          ),
        );
      }
      return out.length > 0 ? out : [ok('drbd', h, `${res}: ${s.role}${s.peerRoles.length ? `/${s.peerRoles.join('/')}` : ''}, ${s.cstates.join(', ')}, ${disks.join('/')}`)];
    }),
};

// ---------------------------------------------------------------- targets

function storageFacts(site: DoctorSite, g: Gathered, host: string): StorageFacts {
  const { lvs } = fact(g, host, lvsProbe(site.storage.vg));
  const base: StorageFacts = { host, drbdProblems: [], vg: null, vgProblem: null, lvs, lv: null, pvProblem: null };
  if (site.storage.driver === 'lio') return { ...base, lio: fact(g, host, lioProbe) };
  const conf = fact(g, host, scstFileProbe);
  return { ...base, scst: { conf, text: '', exists: true, running: fact(g, host, scstRunningProbe), mode: '0600' } };
}

function targetProbes(site: DoctorSite): Probe<unknown>[] {
  return [lvsProbe(site.storage.vg), ...(site.storage.driver === 'lio' ? [lioProbe] : [scstFileProbe, scstRunningProbe])];
}

/** The enssib volumes (LVs tagged `enssib`) with their identity, as the metadata host (else any server) lists them. */
function enssibVolumes(site: DoctorSite, g: Gathered, hosts: string[]): { name: string; identity: Identity | null; sizeBytes: number }[] {
  const order = [site.storage.meta, ...hosts.filter((h) => h !== site.storage.meta)];
  for (const h of order) {
    try {
      const { lvs } = fact(g, h, lvsProbe(site.storage.vg));
      return lvs
        .filter((l) => l.tags.includes(VOLUME_TAG))
        .map((l) => {
          let identity: Identity | null;
          try {
            identity = identityFromTags(l.tags);
          } catch {
            identity = null;
          }
          return { name: l.name, identity, sizeBytes: l.sizeBytes };
        });
    } catch {
      /* next server */
    }
  }
  return [];
}

/** The identity a server exports a volume with (SCST t10_dev_id in force, LIO unit serial), or null. */
function exportedIdentity(site: DoctorSite, f: StorageFacts, name: string): string | null {
  const iqn = iqnOf(site.storage, name);
  if (f.scst) return volumeState(f.scst.running, name, iqn).device?.attrs.get('t10_dev_id')?.[0] ?? null;
  if (f.lio) return lioVolumeState(f.lio, name, iqn).backstore?.serial.toLowerCase() ?? null;
  return null;
}

function wantedIdentity(site: DoctorSite, id: Identity): string {
  return site.storage.driver === 'scst' ? scstIdentity(id).t10DevId : lioSerial(id);
}

const CACHE_WHY = 'SCST then acknowledges writes still held in a volatile cache: a failover or a power cut corrupts the volume';

export const targetsCheck: HostCheck = {
  id: 'targets',
  summary: 'SCST devices nv_cache 0 / write_through 1, every enssib volume exported by both storage servers with one identity (LIO: the same)',
  on: 'storage',
  probes: targetProbes,
  judge(site, g, hosts) {
    const volumes = enssibVolumes(site, g, hosts);
    return perHost('targets', hosts, (h) => {
      const f = storageFacts(site, g, h);
      const server = site.storage.servers.find((s) => s.name === h);
      const out: Finding[] = [];
      const bad = new Map<string, { problems: Set<string>; where: Set<string> }>();
      if (f.scst) {
        for (const [where, conf] of [
          [SCST_CONF, f.scst.conf],
          ['in force', f.scst.running],
        ] as const) {
          for (const d of unsafeDevices(conf)) {
            const e = bad.get(d.name) ?? { problems: new Set<string>(), where: new Set<string>() };
            d.problems.forEach((p) => e.problems.add(p));
            e.where.add(where);
            bad.set(d.name, e);
          }
        }
        for (const [name, e] of bad) {
          out.push(
            problem(
              'fail',
              'targets',
              h,
              `SCST device ${name}: ${[...e.problems].join(', ')} (${[...e.where].join(' and ')}); must be nv_cache 0, write_through 1`,
              CACHE_WHY,
              `Set nv_cache 0 and write_through 1 for ${name} in ${SCST_CONF} on ${h}, then apply it in a maintenance window (scstadmin -config ${SCST_CONF}; an open device may need to be closed and reopened).`,
            ),
          );
        }
      }
      for (const v of volumes) {
        // A volume whose device is unsafe is reported above; its export is otherwise as wanted.
        if (!server || !v.identity || bad.has(v.name)) continue;
        if (exportPresent(site.storage, server, f, { name: v.name, identity: v.identity })) continue;
        const trace = exportTrace(site.storage, f, v.name);
        const id = exportedIdentity(site, f, v.name);
        const want = wantedIdentity(site, v.identity);
        if (trace.length === 0) {
          out.push(
            problem(
              'fail',
              'targets',
              h,
              `volume ${v.name} is not exported by ${h}`,
              'the workers reach it through the other storage server only: losing that server takes the volume from its pods',
              `Run enssib volume create ${v.name} ${formatBytes(v.sizeBytes)} again: a re-run exports what is missing, with the volume's identity.`,
            ),
          );
        } else if (id !== null && id !== want) {
          out.push(
            problem(
              'fail',
              'targets',
              h,
              `volume ${v.name} is exported by ${h} with identity ${id}, not the volume's ${want}`,
              'multipathd sees two different disks instead of two paths to one: writes through each server land on what the workers think are different devices',
              `Remove this export on ${h} (enssib volume delete is for the whole volume: use scstadmin -close_dev / targetcli there), then run enssib volume create ${v.name} ${formatBytes(v.sizeBytes)} again.`,
            ),
          );
        } else {
          out.push(
            problem(
              'fail',
              'targets',
              h,
              `volume ${v.name} is only partly exported by ${h} (${trace.join(', ')})`,
              'a target without its device (or a file not in force) serves nothing, or serves something else after the next restart',
              `Run enssib volume create ${v.name} ${formatBytes(v.sizeBytes)} again: a re-run completes the export.`,
            ),
          );
        }
      }
      if (out.length > 0) return out;
      const n = volumes.filter((v) => v.identity).length;
      const what = f.scst ? 'devices nv_cache 0 and write_through 1, ' : '';
      return [ok('targets', h, `${what}${n} enssib volume${n === 1 ? '' : 's'} exported with ${n === 1 ? 'its' : 'their'} identity`)];
    });
  },
};

// ---------------------------------------------------------------- LVM

/** Free space of the volume group below which doctor warns (snapshots and growth need room). */
export const VG_FREE_WARN = 0.1;
/** Copy-on-write usage of a snapshot above which it is filling (warn) and about to be invalid (fail). */
export const SNAP_WARN_PCT = 50;
export const SNAP_FAIL_PCT = 80;

export const lvmCheck: HostCheck = {
  id: 'lvm',
  summary: 'volume group free space; leftover, filling or invalid snapshots; a snapshot of a volume the other storage server still exports',
  on: 'storage',
  probes: (site) => [vgProbe(site.storage.vg), ...targetProbes(site)],
  judge: (site, g, hosts) =>
    perHost('lvm', hosts, (h) => {
      const vg = fact(g, h, vgProbe(site.storage.vg));
      const { snapshots } = fact(g, h, lvsProbe(site.storage.vg));
      const out: Finding[] = [];
      const free = vg.sizeBytes > 0 ? vg.freeBytes / vg.sizeBytes : 0;
      const freeText = `volume group ${vg.name}: ${formatBytes(vg.freeBytes)} free of ${formatBytes(vg.sizeBytes)} (${(free * 100).toFixed(0)}%)`;
      if (free < VG_FREE_WARN) {
        out.push(
          problem(
            'warn',
            'lvm',
            h,
            freeText,
            'backups need free space for their snapshots, and volumes cannot grow without it',
            `Remove what is no longer used (enssib volume delete), or add a disk to both storage servers and grow the DRBD device and the volume group.`,
          ),
        );
      }
      for (const s of snapshots) {
        const used = s.usedPercent === null ? '' : ` (${s.usedPercent.toFixed(0)}% of its copy-on-write area used)`;
        if (s.invalid) {
          out.push(
            problem(
              'fail',
              'lvm',
              h,
              `snapshot ${s.name} of ${s.origin} is invalid: its copy-on-write area filled up`,
              'its content is lost: a backup taken from it is unusable',
              `lvremove ${site.storage.vg}/${s.name} on ${site.storage.meta}, and size the next snapshot larger.`,
            ),
          );
        } else if (s.usedPercent !== null && s.usedPercent >= SNAP_WARN_PCT) {
          out.push(
            problem(
              s.usedPercent >= SNAP_FAIL_PCT ? 'fail' : 'warn',
              'lvm',
              h,
              `snapshot ${s.name} of ${s.origin} is filling${used}`,
              'a snapshot whose copy-on-write area fills becomes invalid and its content is lost',
              `Finish or stop the backup reading it, then lvremove ${site.storage.vg}/${s.name}; or lvextend it if it must live longer.`,
            ),
          );
        } else {
          out.push(
            problem(
              'warn',
              'lvm',
              h,
              `snapshot ${s.name} of ${s.origin} exists${used}`,
              'snapshots are removed after every backup: a leftover one slows every write to its volume and fills up in the end',
              `If no backup is running: lvremove ${site.storage.vg}/${s.name} on ${site.storage.meta}.`,
            ),
          );
        }
        if (!s.active) continue;
        for (const other of hosts.filter((x) => x !== h)) {
          let exported: string[];
          let active: boolean;
          try {
            exported = exportTrace(site.storage, storageFacts(site, g, other), s.origin);
            active = fact(g, other, lvsProbe(site.storage.vg)).lvs.some((l) => l.name === s.origin && l.active);
          } catch {
            continue;
          }
          if (exported.length > 0 && active) {
            out.push(
              problem(
                'fail',
                'lvm',
                h,
                `snapshot ${s.name} of ${s.origin} on ${h} while ${other} still exports ${s.origin} and has it active`,
                `DRBD applies writes arriving through ${other} beneath LVM: the snapshot does not see them, its content changes under it and the backup is inconsistent`,
                `Take ${other}'s export of ${s.origin} offline while the snapshot exists (the workers keep the path through ${h}), or remove the snapshot.`,
              ),
            );
          }
        }
      }
      if (out.length === 0) out.push(ok('lvm', h, `${freeText}, no snapshot`));
      else if (free >= VG_FREE_WARN) out.unshift(ok('lvm', h, freeText));
      return out;
    }),
};

// ---------------------------------------------------------------- workers: iSCSI paths

export const pathsCheck: HostCheck = {
  id: 'paths',
  summary: 'for every volume a worker is logged in to: sessions to every portal and every multipath path active',
  on: 'workers',
  probes: () => [sessionsProbe, multipathProbe],
  judge: (site, g, hosts) =>
    perHost('paths', hosts, (h) => {
      const sessions = fact(g, h, sessionsProbe);
      const maps = fact(g, h, multipathProbe);
      const prefix = `${site.storage.iqnPrefix}:`;
      const iqns = [...new Set(sessions.map((s) => s.iqn).filter((i) => i.startsWith(prefix)))].sort();
      const portals = site.storage.servers.map((s) => s.portal);
      const out: Finding[] = [];
      for (const iqn of iqns) {
        const v = verifyPaths(iqn, portals, sessions, maps);
        if (v.ok) continue;
        const name = iqn.slice(prefix.length);
        const missing = portals.filter((p) => !sessions.some((s) => s.iqn === iqn && s.portal === p));
        out.push(
          problem(
            'fail',
            'paths',
            h,
            `volume ${name}: ${v.problems.join('; ')}`,
            'with one path left, the next storage-server reboot or failover takes the volume from its pods (I/O errors, read-only filesystems)',
            missing.length > 0
              ? missing.map((p) => `iscsiadm -m node -T ${iqn} -p ${p} --login`).join('; ')
              : `Check the cluster link to the failed path's portal from ${h} (ping -M do -s 8972 <portal address>), then multipathd reinstate path <dev>; multipath -ll shows the state.`,
          ),
        );
      }
      if (out.length > 0) return out;
      return [ok('paths', h, iqns.length === 0 ? 'logged in to no volume' : `${iqns.length} volume${iqns.length === 1 ? '' : 's'}, each with ${portals.length} sessions and ${portals.length} active paths`)];
    }),
};

// ---------------------------------------------------------------- network

export const mtuCheck: HostCheck = {
  id: 'mtu',
  summary: "the cluster interface (the one holding the host's inventory address) has the cluster network's MTU",
  on: 'all',
  probes: () => [addrProbe],
  judge: (site, g, hosts) =>
    perHost('mtu', hosts, (h) => {
      const address = addressOf(site, h);
      const ifs = fact(g, h, addrProbe);
      const i = ifs.find((x) => x.addresses.includes(address));
      if (!i) {
        return [
          problem(
            'fail',
            'mtu',
            h,
            `no interface holds the host's cluster address ${address}`,
            'the storage, DRBD and the other hosts reach this host at that address',
            `Configure ${address} on ${h}'s cluster interface (/etc/network/interfaces), or correct its address in the inventory.`,
          ),
        ];
      }
      if (i.mtu !== site.clusterMtu) {
        return [
          problem(
            'fail',
            'mtu',
            h,
            `${i.name} (${address}) has MTU ${i.mtu}; the cluster network's is ${site.clusterMtu}`,
            'with mismatched MTUs large frames are dropped (iSCSI and DRBD stall), and NFS over UDP corrupts data',
            `ip link set dev ${i.name} mtu ${site.clusterMtu} on ${h}, and set "mtu ${site.clusterMtu}" for ${i.name} in /etc/network/interfaces so that it stays.`,
          ),
        ];
      }
      return [ok('mtu', h, `${i.name} (${address}) MTU ${i.mtu}`)];
    }),
};

function inCidr(addr: string, cidr: string): boolean {
  const ipaddr = requireCjs('ipaddr.js') as typeof Ipaddr;
  try {
    const [net, len] = ipaddr.IPv4.parseCIDR(cidr);
    const a = ipaddr.IPv4.parse(addr.split('/')[0] ?? addr);
    return a.match(net, len);
  } catch {
    return false;
  }
}

export const gatewayCheck: HostCheck = {
  id: 'gateway',
  summary: "every worker's default route goes through the keepalived host (nodes.gateway, else nfs.vip)",
  on: 'workers',
  probes: () => [routeProbe],
  judge: (site, g, hosts) =>
    perHost('gateway', hosts, (h) => {
      if (!site.gateway) return [couldNotRun('gateway', h, 'the inventory has neither nodes.gateway nor nfs.vip (the keepalived address the workers route through)')];
      const defaults = fact(g, h, routeProbe).filter((r) => r.dst === 'default');
      const fix = (dev: string) => `ip route replace default via ${site.gateway} dev ${dev} on ${h}, and set "gateway ${site.gateway}" in /etc/network/interfaces so that it stays.`;
      const why = 'the services answer their users through the keepalived host: another way out breaks the return path when the VIP moves';
      if (defaults.length === 0) return [problem('fail', 'gateway', h, 'no default route', why, fix('<cluster interface>'))];
      const wrong = defaults.filter((r) => r.gateway !== site.gateway);
      if (wrong.length > 0) {
        return [problem('fail', 'gateway', h, `default route via ${wrong.map((r) => r.gateway ?? `${r.dev} (no gateway)`).join(', ')}, not the keepalived host ${site.gateway}`, why, fix(wrong[0]?.dev ?? 'eth0'))];
      }
      return [ok('gateway', h, `default route via ${site.gateway}`)];
    }),
};

export const podRoutesCheck: HostCheck = {
  id: 'pod-routes',
  summary: "a route to every other worker's pod /24 through that worker, and no stale pod route",
  on: 'workers',
  probes: () => [routeProbe],
  judge: (site, g, hosts) =>
    perHost('pod-routes', hosts, (h) => {
      const routes = fact(g, h, routeProbe);
      const others = site.hosts.filter((w) => w.roles.includes('worker') && w.name !== h && w.podSubnet);
      const own = site.hosts.find((w) => w.name === h)?.podSubnet;
      const out: Finding[] = [];
      const why = 'pods on this worker cannot reach the pods of that worker (services behind them time out)';
      for (const w of others) {
        const r = routes.find((x) => x.dst === w.podSubnet);
        const fix = `ip route replace ${w.podSubnet} via ${w.address} on ${h}, and make it permanent (/etc/network/interfaces, or enssib node bootstrap ${h}).`;
        if (!r) out.push(problem('fail', 'pod-routes', h, `no route to ${w.name}'s pods ${w.podSubnet} (via ${w.address})`, why, fix));
        else if (r.gateway !== w.address) out.push(problem('fail', 'pod-routes', h, `route to ${w.name}'s pods ${w.podSubnet} goes via ${r.gateway ?? r.dev}, not ${w.address}`, why, fix));
      }
      const known = new Set([...others.map((w) => w.podSubnet), own]);
      for (const r of routes) {
        if (r.dst === 'default' || known.has(r.dst) || !r.dst.includes('/') || !inCidr(r.dst, site.podsCidr)) continue;
        out.push(
          problem(
            'warn',
            'pod-routes',
            h,
            `stale route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}: no worker of the inventory owns this pod subnet`,
            'a worker that later gets this subnet is unreachable from here, and traffic to it goes to a host that no longer runs those pods',
            `ip route del ${r.dst} on ${h}, and remove it from /etc/network/interfaces.`,
          ),
        );
      }
      return out.length > 0 ? out : [ok('pod-routes', h, `routes to the pods of ${others.length} other worker${others.length === 1 ? '' : 's'}, none stale`)];
    }),
};

function proto(options: string): string {
  const m = /(?:^|,)proto=(\w+)/.exec(options);
  // Without proto= the kernel mounts over TCP (NFSv4 always, NFSv3 by default).
  return m ? (m[1] as string).replace(/6$/, '') : 'tcp';
}

export const nfsCheck: HostCheck = {
  id: 'nfs',
  summary: 'NFS mounts use the inventory\'s protocol (nfs.protocol, default tcp); no UDP where the kernel cannot mount it (Debian 12)',
  on: 'workers',
  probes: () => [nfsProbe],
  judge: (site, g, hosts) =>
    perHost('nfs', hosts, (h) => {
      const f = fact(g, h, nfsProbe);
      const want = site.nfsProtocol;
      const out: Finding[] = [];
      const udpWhy = 'NFS over UDP corrupts data unless MTU 9000 holds end to end, and Debian 12\'s kernel (CONFIG_NFS_DISABLE_UDP_SUPPORT=y) cannot mount it at all';
      for (const m of f.mounts) {
        const p = proto(m.options);
        if (p !== want) {
          out.push(
            problem('fail', 'nfs', h, `${m.target} (${m.source}) is mounted over ${p}, the inventory says ${want}`, p === 'udp' ? udpWhy : 'the site mounts NFS one way; a mount that differs behaves differently on failover', `Remount ${m.target} with proto=${want} (fix its line in /etc/fstab or nfsmount.conf first).`),
          );
        }
      }
      if (f.udpDisabled) {
        const udpLater = [...f.fstab.filter((e) => proto(e.options) === 'udp').map((e) => `${e.target} in /etc/fstab`), ...(f.confProto === 'udp' ? ['/etc/nfsmount.conf'] : [])];
        if (udpLater.length > 0) {
          out.push(problem('fail', 'nfs', h, `UDP asked for by ${udpLater.join(', ')}, but this kernel cannot mount NFS over UDP`, 'the mount fails at the next boot or remount: the pods using it do not start', 'Use proto=tcp there (Debian 12 dropped NFS over UDP).'));
        }
        if (want === 'udp') out.push(problem('fail', 'nfs', h, 'the inventory asks for NFS over UDP, but this kernel cannot mount it', udpWhy, 'Set nfs.protocol: tcp in the inventory and remount over TCP.'));
      }
      if (out.length > 0) return out;
      return [ok('nfs', h, f.mounts.length === 0 ? 'no NFS mount' : `${f.mounts.length} NFS mount${f.mounts.length === 1 ? '' : 's'} over ${want}`)];
    }),
};

// ---------------------------------------------------------------- registry, from the workers

function pullProbe(site: DoctorSite): Probe<RegistryFromHost> | null {
  const { host, ca } = site.registry;
  if (ca && 'error' in ca) return null;
  return registryProbe(host, splitHost(host)[0], ca?.pem ?? null);
}

export const registryPullCheck: HostCheck = {
  id: 'registry-pull',
  summary: "every worker reaches the registry over TLS and its certificate verifies there with the inventory's CA (the container runtime pulls from it)",
  on: 'workers',
  probes: (site) => {
    const p = pullProbe(site);
    return p ? [p] : [];
  },
  judge: (site, g, hosts) =>
    perHost('registry-pull', hosts, (h) => {
      const { host, ca } = site.registry;
      const [name] = splitHost(host);
      const p = pullProbe(site);
      if (!p) return [couldNotRun('registry-pull', h, `the inventory's CA cannot be read here (${ca && 'error' in ca ? ca.error : '?'}): see the registry check`)];
      const f = fact(g, h, p);
      const withCa = ca ? "the inventory's CA" : `${h}'s own CAs`;
      const why = `the container runtime on ${h} pulls every image of its pods from the registry: without it, pods scheduled here stay in ImagePullBackOff`;
      if (f.kind === 'no-openssl') return [couldNotRun('registry-pull', h, `openssl is not installed on ${h} (apt-get install openssl): this check makes its TLS handshake with it`)];
      if (f.kind === 'unreachable') {
        return [problem('fail', 'registry-pull', h, `${h} cannot reach the registry ${host}: ${f.reason}`, why, `On ${h}: getent hosts ${name} (the name resolves?), ip route get <its address> (through the keepalived host?); check that the registry answers on ${host} and that no firewall drops ${h}.`)];
      }
      if (f.verifyCode !== 0) {
        return [
          problem(
            'fail',
            'registry-pull',
            h,
            `the registry ${host} (${f.subject}) does not verify on ${h} with ${withCa}: ${f.verifyText}`,
            `${why}; it refuses a registry it cannot verify`,
            f.verifyCode === 10 || f.verifyCode === 9 ? `Renew the registry's certificate (enssib doctor --only registry says until when it is valid).` : `Check that ${h} reaches the registry the inventory names (getent hosts ${name}), and that registry.ca is the CA that signed its certificate.`,
          ),
        ];
      }
      return [ok('registry-pull', h, `${host} reached; certificate (${f.subject}) trusted with ${withCa}${f.validTo ? `, valid until ${f.validTo.toISOString().slice(0, 10)}` : ''}`)];
    }),
};

/** Every host check, in report order. */
export const HOST_CHECKS: readonly HostCheck[] = [sshCheck, clockCheck, drbdCheck, targetsCheck, lvmCheck, pathsCheck, mtuCheck, gatewayCheck, podRoutesCheck, nfsCheck, registryPullCheck];
