import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, ExitCode } from '../../../src/errors.js';
import { loadInventory, locateInventory, parseInventory } from '../../../src/inventory/load.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

const F = '/site/inventory.yaml';

function errorOf(text: string): ConfigError {
  try {
    parseInventory(text, F, {});
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected the inventory to be refused');
}

/** Replace one exact line-part of the valid inventory. */
function withChange(from: string, to: string): string {
  expect(VALID_INVENTORY).toContain(from);
  return VALID_INVENTORY.replace(from, to);
}

describe('a valid inventory', () => {
  it('loads, answers queries and resolves paths beside the file', () => {
    const inv = parseInventory(VALID_INVENTORY, F, {});
    expect(inv.workers().map((h) => h.name)).toEqual(['node01', 'node02']);
    expect(inv.storageServers().map((h) => h.name)).toEqual(['data1', 'data2']);
    expect(inv.metadataHost().name).toBe('data1');
    expect(inv.podSubnet('node02')).toBe('10.100.2.0/24');
    expect(inv.journalFile()).toBe('/site/journal.jsonl');
    expect(inv.path('certs/enssib-ca.crt')).toBe('/site/certs/enssib-ca.crt');
    expect(inv.ssh('node01')).toMatchObject({ target: 'node01', connectTimeoutS: 5 });
  });

  it('takes the ssh config and known_hosts from the environment over the inventory', () => {
    const inv = parseInventory(VALID_INVENTORY, F, { ENSSIB_SSH_CONFIG: '/lab/ssh_config', ENSSIB_SSH_KNOWN_HOSTS: '/lab/kh' });
    expect(inv.ssh('data1')).toMatchObject({ configFile: '/lab/ssh_config', knownHostsFile: '/lab/kh' });
  });

  it('separates the cluster address from how ssh reaches the host', () => {
    const inv = parseInventory(
      withChange('{ name: node01, address: 10.66.6.11, roles: [worker], podSubnet: 10.100.1.0/24 }', '{ name: node01, address: 10.66.6.11, roles: [worker], podSubnet: 10.100.1.0/24, ssh: { host: lab-node01, port: 2222, user: admin } }'),
      F,
      {},
    );
    expect(inv.host('node01').address).toBe('10.66.6.11');
    expect(inv.ssh('node01')).toMatchObject({ target: 'lab-node01', port: 2222, user: 'admin' });
  });

  it('is found by --inventory, then ENSSIB_INVENTORY, then ./inventory.yaml', () => {
    expect(locateInventory('x.yaml', { ENSSIB_INVENTORY: '/e.yaml' }, '/cwd')).toEqual({ path: '/cwd/x.yaml', source: '--inventory' });
    expect(locateInventory(undefined, { ENSSIB_INVENTORY: '/e.yaml' }, '/cwd')).toEqual({ path: '/e.yaml', source: 'ENSSIB_INVENTORY' });
    expect(locateInventory(undefined, {}, '/cwd')).toEqual({ path: '/cwd/inventory.yaml', source: 'default' });
  });

  it('the bundled inventory.yaml is valid', () => {
    const inv = loadInventory({ path: join(process.cwd(), 'inventory.yaml'), source: '--inventory' }, {});
    expect(inv.workers()).toHaveLength(3);
    expect(inv.data.storage.targetDriver).toBe('scst');
  });
});

/**
 * Malformed inventories: each is refused with the configuration exit code and a
 * message naming file:line:column, the field, what was expected and what was found.
 */
const cases: [string, string, RegExp][] = [
  ['YAML syntax error', VALID_INVENTORY.replace('site: test', 'site: [test'), /^\/site\/inventory\.yaml:\d+:\d+: YAML syntax error/],
  ['tab indentation', VALID_INVENTORY.replace('  pods: 10.100.0.0/16', '\tpods: 10.100.0.0/16'), /inventory\.yaml:5:1: YAML syntax error: Tabs/],
  ['duplicate key', VALID_INVENTORY.replace('site: test', 'site: test\nsite: again'), /YAML syntax error: Map keys must be unique/],
  ['a list at top level', '- a\n- b\n', /:1:1: expected a mapping of settings/],
  ['a scalar at top level', 'hello\n', /:1:1: expected a mapping of settings .*found string "hello"/],
  ['missing networks', VALID_INVENTORY.replace(/networks:[\s\S]*?users: 192.168.66.0\/26\n/, ''), /:1:1: networks: missing; expected a mapping/],
  ['hosts not a list', withChange('hosts:\n', 'hosts: 3\nx_hosts:\n'), /:9:8: hosts: expected a list, found number 3/],
  ['mtu is a string', withChange('mtu: 9000', 'mtu: "jumbo"'), /:7:\d+: networks\.cluster\.mtu: expected a number, found string "jumbo"/],
  ['mtu too small', withChange('mtu: 9000', 'mtu: 100'), /networks\.cluster\.mtu: 100 is not an MTU enssib accepts \(576–65535; the site runs 9000\)/],
  ['no hosts', VALID_INVENTORY.replace(/hosts:\n( {2}- .*\n)+/, 'hosts: []\n'), /hosts: expected at least one host/],
  ['a retention above its bound', `${VALID_INVENTORY}backup: { destination: /srv/b, retention: { daily: 99999 } }\n`, /backup\.retention\.daily: 99999 is more than the most allowed \(3650\)/],
  ['unknown top-level field', VALID_INVENTORY + 'storrage: {}\n', /:\d+:\d+: storrage: unknown field "storrage"/],
  ['unknown host field', withChange('{ name: data1, address: 10.66.6.1,', '{ name: data1, adress: 10.66.6.9, address: 10.66.6.1,'), /hosts\[0\]\.adress: unknown field "adress"/],
  ['unknown role', withChange('roles: [master, storage] }\n  - { name: data2', 'roles: [master, stroage] }\n  - { name: data2'), /:10:\d+: hosts\[0\]\.roles\[1\]: expected one of "master", "storage", "worker", found string "stroage"/],
  ['no roles', withChange('roles: [worker], podSubnet: 10.100.2.0/24', 'roles: [], podSubnet: 10.100.2.0/24'), /hosts\[3\]\.roles: expected at least one role/],
  ['bad address', withChange('address: 10.66.6.12', 'address: 10.66.6.312'), /hosts\[3\]\.address: expected an IPv4 address.*found string "10\.66\.6\.312"/],
  ['host name with shell characters', withChange('name: node02', 'name: "node02;reboot"'), /hosts\[3\]\.name: expected a host name/],
  ['uppercase host name', withChange('name: node02', 'name: Node02'), /hosts\[3\]\.name: expected a host name/],
  ['duplicate host name', withChange('name: node02', 'name: node01'), /:\d+:\d+: hosts\[3\]\.name: duplicate host name "node01" \(also hosts\[2\]\)/],
  ['duplicate address', withChange('address: 10.66.6.12', 'address: 10.66.6.11'), /hosts\[3\]\.address: duplicate address 10\.66\.6\.11/],
  ['address outside the cluster network', withChange('address: 10.66.6.12', 'address: 10.66.7.12'), /hosts\[3\]\.address: address 10\.66\.7\.12 is outside the cluster network/],
  ['worker without pod subnet', withChange(', podSubnet: 10.100.2.0/24', ''), /:\d+:\d+: hosts\[3\]: worker "node02" has no podSubnet/],
  ['pod subnet outside pods', withChange('podSubnet: 10.100.2.0/24', 'podSubnet: 10.200.2.0/24'), /hosts\[3\]\.podSubnet: pod subnet 10\.200\.2\.0\/24 is outside the pods network 10\.100\.0\.0\/16/],
  ['pod subnet overlapping another', withChange('podSubnet: 10.100.2.0/24', 'podSubnet: 10.100.1.0/24'), /hosts\[3\]\.podSubnet: pod subnet 10\.100\.1\.0\/24 overlaps 10\.100\.1\.0\/24 of "node01"/],
  ['pod subnet smaller than a /24', withChange('podSubnet: 10.100.2.0/24', 'podSubnet: 10.100.2.0/25'), /hosts\[3\]\.podSubnet: pod subnet 10\.100\.2\.0\/25 is a \/25; each worker owns exactly a \/24/],
  ['pod subnet larger than a /24', withChange('podSubnet: 10.100.2.0/24', 'podSubnet: 10.100.2.0/23'), /is a \/23; each worker owns exactly a \/24/],
  ['registry without a port', withChange('registry.cluster.enssib.fr:5000', 'registry.cluster.enssib.fr'), /registry\.host: expected "name:port" with its port/],
  ['registry port out of range', withChange('registry.cluster.enssib.fr:5000', 'registry.cluster.enssib.fr:99999'), /registry\.host: expected "name:port"/],
  ['pod subnet not a network address', withChange('podSubnet: 10.100.2.0/24', 'podSubnet: 10.100.2.7/24'), /hosts\[3\]\.podSubnet: expected a network in CIDR form/],
  ['pod subnet on a storage server', withChange('{ name: data2, address: 10.66.6.2, roles: [master, storage] }', '{ name: data2, address: 10.66.6.2, roles: [master, storage], podSubnet: 10.100.9.0/24 }'), /hosts\[1\]\.podSubnet: "data2" is not a worker/],
  ['no storage server', withChange('roles: [master, storage] }\n  - { name: data2, address: 10.66.6.2, roles: [master, storage] }', 'roles: [master] }\n  - { name: data2, address: 10.66.6.2, roles: [master] }'), /hosts: no host has the "storage" role/],
  ['portal that is no storage server', withChange('portals: [10.66.6.1:3260, 10.66.6.2:3260]', 'portals: [10.66.6.1:3260, 10.66.6.11:3260]'), /:\d+:\d+: storage\.portals\[1\]: portal 10\.66\.6\.11:3260 is not the address of a storage server/],
  ['portal without port', withChange('portals: [10.66.6.1:3260, 10.66.6.2:3260]', 'portals: [10.66.6.1, 10.66.6.2:3260]'), /storage\.portals\[0\]: expected an iSCSI portal/],
  ['metadata host unknown', withChange('metadataHost: data1', 'metadataHost: data3'), /storage\.metadataHost: metadata host "data3" is not a host/],
  ['metadata host is a worker', withChange('metadataHost: data1', 'metadataHost: node01'), /storage\.metadataHost: metadata host "node01" is not a storage server/],
  ['unknown target driver', withChange('targetDriver: scst', 'targetDriver: iet'), /storage\.targetDriver: expected one of "scst", "lio", found string "iet"/],
  ['bad iqn prefix', withChange('iqnPrefix: iqn.2016-04.fr.enssib', 'iqnPrefix: enssib'), /storage\.iqnPrefix: expected an IQN prefix/],
  ['overlapping networks', withChange('services: 10.101.0.0/23', 'services: 10.100.128.0/23'), /networks\.pods: the pods network 10\.100\.0\.0\/16 overlaps the services network/],
  ['bad api url', withChange('api: https://api.cluster.enssib.fr:6443', 'api: "api.cluster:6443"'), /kubernetes\.api: expected the API server URL/],
  ['NFS VIP taken by a host', withChange('vip: 10.66.6.10', 'vip: 10.66.6.1'), /nfs\.vip: NFS VIP 10\.66\.6\.1 is the address of host "data1"/],
  ['ssh alias with shell characters', withChange('{ name: data1, address: 10.66.6.1, roles: [master, storage] }', '{ name: data1, address: 10.66.6.1, roles: [master, storage], ssh: { host: "x;id" } }'), /hosts\[0\]\.ssh\.host: expected a host name or ssh alias/],
  ['ssh port out of range', withChange('{ name: data1, address: 10.66.6.1, roles: [master, storage] }', '{ name: data1, address: 10.66.6.1, roles: [master, storage], ssh: { port: 70000 } }'), /hosts\[0\]\.ssh\.port: 70000 is not a port \(1–65535\)$/m],
  ['unicode host name', withChange('name: node02', 'name: nœud02'), /hosts\[3\]\.name: expected a host name/],
  ['empty document', '', /:1:1: the inventory is empty/],
  ['only comments', '# nothing here\n\n', /:1:1: the inventory is empty/],
  ['null document', '~\n', /:1:1: expected a mapping of settings .*found nothing/],
];

describe('malformed inventories', () => {
  it.each(cases)('%s', (_name, text, expected) => {
    const e = errorOf(text);
    expect(e.exitCode).toBe(ExitCode.usage);
    const all = [e.message, ...e.details].join('\n');
    expect(all).toMatch(expected);
    expect(e.message).toMatch(/^\/site\/inventory\.yaml:\d+:\d+: /);
  });

  it('reports every problem, each with its position', () => {
    const e = errorOf(withChange('name: node02', 'name: node01').replace('targetDriver: scst', 'targetDriver: x'));
    expect([e.message, ...e.details].every((l) => /^\/site\/inventory\.yaml:\d+:\d+: /.test(l))).toBe(true);
  });
});

describe('inventory files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-inv-'));
  const load = (p: string) => () => loadInventory({ path: p, source: '--inventory' }, {});

  it('a missing file', () => {
    expect(load(join(dir, 'nope.yaml'))).toThrow(/nope\.yaml: no such file/);
  });
  it('a directory', () => {
    mkdirSync(join(dir, 'd.yaml'));
    expect(load(join(dir, 'd.yaml'))).toThrow(/is a directory, not an inventory file/);
  });
  it('a 10 MB file', () => {
    writeFileSync(join(dir, 'big.yaml'), `site: x\n${'# padding padding padding\n'.repeat(420_000)}`);
    expect(load(join(dir, 'big.yaml'))).toThrow(/MiB; an inventory is at most 1 MiB/);
  });
  it('an empty file', () => {
    writeFileSync(join(dir, 'empty.yaml'), '');
    expect(load(join(dir, 'empty.yaml'))).toThrow(/empty\.yaml:1:1: the inventory is empty/);
  });
  it('binary garbage', () => {
    writeFileSync(join(dir, 'bin.yaml'), Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x7b, 0x7b, 0x0a]));
    expect(load(join(dir, 'bin.yaml'))).toThrow(ConfigError);
  });
});
