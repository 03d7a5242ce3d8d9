import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DoctorSite } from '../../../src/doctor/checks.js';
import type { Gathered } from '../../../src/doctor/facts.js';
import type { RunResult } from '../../../src/remote/types.js';
import { asIdentity } from '../../../src/storage/identity.js';
import { parseScstConf, renderScstConf, upsertVolume } from '../../../src/storage/targets/scst.js';
import { testVolumeSite } from '../../support/volume-site.js';

/** A small site (data1, data2, node01, node02) and the captured outputs of a healthy one, for the doctor checks. */

export const fx = (f: string) => readFileSync(join(import.meta.dirname, '..', 'storage', 'fixtures', f), 'utf8');

export const ID = asIdentity('a1a93ec0062020a80f091605229042ee');

export const site: DoctorSite = {
  hosts: [
    { name: 'data1', address: '10.66.6.1', roles: ['master', 'storage'] },
    { name: 'data2', address: '10.66.6.2', roles: ['master', 'storage'] },
    { name: 'node01', address: '10.66.6.11', roles: ['worker'], podSubnet: '10.100.1.0/24' },
    { name: 'node02', address: '10.66.6.12', roles: ['worker'], podSubnet: '10.100.2.0/24' },
  ],
  storage: testVolumeSite(),
  clusterMtu: 9000,
  podsCidr: '10.100.0.0/16',
  gateway: '10.66.6.10',
  nfsProtocol: 'tcp',
  registry: { host: 'registry.cluster.enssib.fr:5000', ca: { pem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----' } },
};

export const res = (stdout: string, exitCode = 0, stderr = '', durationMs = 20): RunResult => ({ stdout, exitCode, stderr, durationMs });

export function lvsJson(lvs: { name: string; tags?: string; attr?: string; origin?: string; pct?: string; size?: number }[]): string {
  const rows = lvs.map(
    (l) =>
      `{"lv_name":"${l.name}", "vg_name":"vg_cluster", "lv_size":"${l.size ?? 1073741824}", "lv_tags":"${l.tags ?? ''}", "lv_attr":"${l.attr ?? '-wi-ao----'}", "lv_active":"${(l.attr ?? '-wi-ao----').charAt(4) === 'a' ? 'active' : ''}", "lv_path":"/dev/vg_cluster/${l.name}", "lv_device_open":"", "origin":"${l.origin ?? ''}", "data_percent":"${l.pct ?? ''}"}`,
  );
  return `  {\n      "report": [\n          {\n              "lv": [\n                  ${rows.join(',\n                  ')}\n              ]\n          }\n      ]\n  }\n`;
}

export const MAIL_LV = { name: 'mail', tags: `enssib,enssib_fs_ext4,enssib_id_${ID}` };

export const scstConf = renderScstConf(upsertVolume(parseScstConf(''), { name: 'mail', filename: '/dev/vg_cluster/mail', identity: ID, iqn: 'iqn.2016-04.fr.enssib:mail' }));

export function vgsJson(size: number, free: number): string {
  return `{"report":[{"vg":[{"vg_name":"vg_cluster", "vg_size":"${size}", "vg_free":"${free}", "vg_extent_size":"4194304", "vg_extent_count":"${size / 4194304}", "vg_free_count":"${free / 4194304}"}]}]}`;
}

export function ipAddr(address: string, mtu = 9000, ifname = 'eth1'): string {
  return JSON.stringify([
    { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP'], mtu: 65536, operstate: 'UNKNOWN', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
    { ifindex: 2, ifname: 'eth0', flags: ['UP'], mtu: 1500, operstate: 'UP', addr_info: [{ family: 'inet', local: '192.168.66.30', prefixlen: 26 }] },
    { ifindex: 3, ifname, flags: ['UP'], mtu, operstate: 'UP', addr_info: [{ family: 'inet', local: address, prefixlen: 24 }, { family: 'inet6', local: 'fe80::1', prefixlen: 64 }] },
  ]);
}

export function ipRoute(self: string, others: [string, string][], gateway = '10.66.6.10', extra: object[] = []): string {
  return JSON.stringify([
    { dst: 'default', gateway, dev: 'eth1', flags: [] },
    { dst: '10.66.6.0/24', dev: 'eth1', protocol: 'kernel', scope: 'link', prefsrc: self, flags: [] },
    { dst: '192.168.66.0/26', dev: 'eth0', protocol: 'kernel', scope: 'link', flags: [] },
    ...others.map(([dst, gw]) => ({ dst, gateway: gw, dev: 'eth1', flags: [] })),
    ...extra,
  ]);
}

export function sessions(iqn: string, paths: [string, string][]): string {
  const out = ['iSCSI Transport Class version 2.0-870', 'version 2.1.8', `Target: ${iqn} (non-flash)`];
  paths.forEach(([portal, disk], i) => {
    out.push(`\tCurrent Portal: ${portal},1`, `\tPersistent Portal: ${portal},1`, `\t\tSID: ${i + 1}`, '\t\tiSCSI Connection State: LOGGED IN', '\t\tiSCSI Session State: LOGGED_IN');
    out.push('\t\tAttached SCSI devices:', `\t\tHost Number: ${i + 2}\tState: running`, `\t\tscsi${i + 2} Channel 00 Id 0 Lun: 0`, `\t\t\tAttached scsi disk ${disk}\t\tState: running`);
  });
  return `${out.join('\n')}\n`;
}

export function multipath(paths: [string, string][]): string {
  return [
    '36001405e0b96a6492d74e4c8a4876db0 dm-0 SCST_BIO,mail',
    "size=1.0G features='1 queue_if_no_path' hwhandler='1 alua' wp=rw",
    "`-+- policy='service-time 0' prio=50 status=active",
    ...paths.map(([disk, state], i) => `  |- ${i + 2}:0:0:0 ${disk} 8:${i * 16} ${state}`),
    '',
  ].join('\n');
}

/** What the registry TLS probe prints on a worker: a handshake verified (code 0), or `verify` as OpenSSL says it. */
export function registryTls(verify = '0 (ok)', notAfter = 'Mar  1 12:00:00 2027 GMT'): string {
  return `== rc 0\nVerify return code: ${verify}\nsubject=CN=registry.cluster.enssib.fr\nnotAfter=${notAfter}\n`;
}

const NFS_OK = '== mounts\n10.66.6.10:/srv/nfs /srv/nfs nfs4 rw,relatime,vers=4.2,proto=tcp,timeo=600\n== fstab\n10.66.6.10:/srv/nfs /srv/nfs nfs4 defaults,proto=tcp\n== conf\n== kernel\n1\n';

/** Every probe's result on a healthy site (clock answered at 1 700 000 000 s on every host). */
export function healthy(): Gathered {
  const storage = (address: string) => ({
    results: {
      system: res('6.1.0-28-amd64\nDebian GNU/Linux 12 (bookworm)\n'),
      'drbd-role': res('Primary/Primary\n'),
      'drbd-cstate': res('Connected\n'),
      'drbd-dstate': res('UpToDate/UpToDate\n'),
      vgs: res(vgsJson(1099511627776, 549755813888)),
      lvs: res(lvsJson([MAIL_LV])),
      'scst-file': res(scstConf),
      'scst-running': res(scstConf),
      'ip-addr': res(ipAddr(address)),
      clock: res('1700000000.010000000\n'),
    },
    clockAt: 1_700_000_000_000 + 20,
  });
  const iqn = 'iqn.2016-04.fr.enssib:mail';
  const worker = (address: string, others: [string, string][]) => ({
    results: {
      system: res('6.1.0-28-amd64\nDebian GNU/Linux 12 (bookworm)\n'),
      'iscsi-sessions': res(sessions(iqn, [
        ['10.66.6.1:3260', 'sda'],
        ['10.66.6.2:3260', 'sdb'],
      ])),
      multipath: res(multipath([
        ['sda', 'active ready running'],
        ['sdb', 'active ready running'],
      ])),
      'ip-addr': res(ipAddr(address)),
      'ip-route': res(ipRoute(address, others)),
      nfs: res(NFS_OK),
      'registry-tls': res(registryTls()),
      clock: res('1700000000.010000000\n'),
    },
    clockAt: 1_700_000_000_000 + 20,
  });
  return {
    data1: storage('10.66.6.1'),
    data2: storage('10.66.6.2'),
    node01: worker('10.66.6.11', [['10.100.2.0/24', '10.66.6.12']]),
    node02: worker('10.66.6.12', [['10.100.1.0/24', '10.66.6.11']]),
  };
}
