import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/errors.js';
import { parseInventory } from '../../../src/inventory/load.js';
import { addWorker, nextPodSubnet, parseLabels } from '../../../src/nodes/inventory-edit.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

/** A commented inventory: everything outside the added entry must stay byte for byte. */
const TEXT = VALID_INVENTORY.replace('hosts:\n', '# the hosts, in order\nhosts:   # keep this comment\n').replace(
  '  - { name: node02, address: 10.66.6.12, roles: [worker], podSubnet: 10.100.2.0/24 }\n',
  '  - { name: node02, address: 10.66.6.12, roles: [worker], podSubnet: 10.100.2.0/24 }   # the second worker\n  # a note after the last host\n\n',
);
const inv = () => parseInventory(TEXT, 'inventory.yaml', {});
const add = (w: Partial<{ name: string; address: string; labels: Record<string, string> }>, text = TEXT) =>
  addWorker(text, parseInventory(text, 'inventory.yaml', {}).data, { name: 'node03', address: '10.66.6.13', labels: {}, ...w });

describe('adding a worker to inventory.yaml', () => {
  it('adds one flow-style line after the last host and keeps every other byte', () => {
    const e = add({ labels: { disk: 'ssd', 'enssib.fr/zone': 'a' } });
    const line = '  - { name: node03, address: 10.66.6.13, roles: [worker], podSubnet: 10.100.3.0/24, labels: { disk: ssd, enssib.fr/zone: a } }\n';
    const at = e.text.indexOf(line);
    expect(at).toBeGreaterThan(0);
    expect(e.text.slice(0, at) + e.text.slice(at + line.length)).toBe(TEXT);
    expect(e.text.slice(0, at)).toContain('# the second worker\n');
    expect(e.podSubnet).toBe('10.100.3.0/24');
    expect(e.diff).toContain(`+${line.trimEnd()}`);
    const back = parseInventory(e.text, 'inventory.yaml', {});
    expect(back.host('node03')).toMatchObject({ address: '10.66.6.13', roles: ['worker'], podSubnet: '10.100.3.0/24', labels: { disk: 'ssd', 'enssib.fr/zone': 'a' } });
  });

  it('gives the first free /24, filling a gap', () => {
    const text = TEXT.replace('podSubnet: 10.100.1.0/24', 'podSubnet: 10.100.5.0/24');
    expect(nextPodSubnet(parseInventory(text, 'i.yaml', {}).data)).toBe('10.100.1.0/24');
  });

  it('refuses when no pod /24 is left', () => {
    const text = TEXT.replace('pods: 10.100.0.0/16', 'pods: 10.100.0.0/23').replace('podSubnet: 10.100.2.0/24', 'podSubnet: 10.100.0.0/24');
    expect(() => add({}, text)).toThrow(/no free pod \/24 left in 10\.100\.0\.0\/23/);
  });

  it.each([
    ['shell metacharacters', 'node;rm -rf /'],
    ['a path', '../node03'],
    ['unicode', 'nœud03'],
    ['empty', ''],
    ['64 characters', `n${'o'.repeat(63)}`],
    ['upper case', 'Node03'],
    ['a leading digit', '3node'],
  ])('refuses a name with %s', (_, name) => {
    expect(() => add({ name })).toThrow(UsageError);
  });

  it('takes a 63-character name', () => {
    expect(add({ name: `n${'o'.repeat(62)}` }).text).toContain(`name: n${'o'.repeat(62)},`);
  });

  it('refuses an address already used, by a host or the NFS VIP', () => {
    expect(() => add({ address: '10.66.6.12' })).toThrow(/already used by "node02"/);
    expect(() => add({ address: '10.66.6.10' })).toThrow(/it is nfs\.vip/);
  });

  it('refuses an address outside the cluster network, or not an address', () => {
    expect(() => add({ address: '192.168.66.5' })).toThrow(/outside the cluster network 10\.66\.6\.0\/24/);
    expect(() => add({ address: '10.66.6.255' })).toThrow(/broadcast/);
    expect(() => add({ address: '10.66.6.1; reboot' })).toThrow(/not an IPv4 address/);
  });

  it('refuses a host that is already there', () => {
    expect(() => add({ name: 'node02', address: '10.66.6.14' })).toThrow(/already in the inventory/);
  });

  it('refuses labels Kubernetes refuses', () => {
    expect(() => parseLabels(['disk'])).toThrow(/has no value/);
    expect(() => parseLabels(['-disk=ssd'])).toThrow(/not a valid Kubernetes label key/);
    expect(() => parseLabels(['disk=ssd fast'])).toThrow(/not a valid Kubernetes label value/);
    expect(() => parseLabels([`disk=${'a'.repeat(64)}`])).toThrow(/not a valid Kubernetes label value/);
    expect(() => parseLabels(['disk=ssd', 'disk=hdd'])).toThrow(/given twice/);
    expect(() => parseLabels(['a/b/c=x'])).toThrow(UsageError);
    expect(() => add({ labels: { 'x;y': 'z' } })).toThrow(UsageError);
    expect(parseLabels(['disk=ssd', 'enssib.fr/tier=', 'a_b.c=1'])).toEqual({ disk: 'ssd', 'enssib.fr/tier': '', 'a_b.c': '1' });
  });

  it('refuses to edit a hosts list written in flow style', () => {
    const hosts = inv().data.hosts.map((h) => `{ name: ${h.name}, address: ${h.address}, roles: [${h.roles.join(', ')}]${h.podSubnet ? `, podSubnet: ${h.podSubnet}` : ''} }`);
    const text = TEXT.replace(/hosts:[^\n]*\n( {2}- [^\n]*\n| {2}#[^\n]*\n|\n)+/, `hosts: [${hosts.join(', ')}]\n`);
    expect(parseInventory(text, 'i.yaml', {}).hosts).toHaveLength(4);
    expect(() => add({}, text)).toThrow(/flow list/);
  });
});
