import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../../src/inventory/load.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

/** The inventory fields of `node bootstrap`: worker labels and taints, the nodes block. */
const NODES = 'nodes:\n  interface: eth1\n  gateway: 10.66.6.20\n  minimum: { memory: 4G, cpus: 2 }\n  apt: { url: "https://pkgs.k8s.io/core:/stable:/v1.30/deb/", key: k.gpg }\n';
const parse = (text: string) => parseInventory(text, '/site/inventory.yaml', {});
const node02 = '  - { name: node02, address: 10.66.6.12, roles: [worker], podSubnet: 10.100.2.0/24 }';
const withNode02 = (extra: string, nodes = NODES) => `${VALID_INVENTORY.replace(node02, `${node02.slice(0, -2)}, ${extra} }`)}${nodes}`;

describe('inventory: nodes, labels, taints', () => {
  it('reads labels, taints and the nodes block', () => {
    const inv = parse(withNode02('labels: { disk: ssd, enssib.fr/zone: a }, taints: ["dedicated=db:NoSchedule", "gpu:NoExecute"]'));
    expect(inv.host('node02')).toMatchObject({ labels: { disk: 'ssd', 'enssib.fr/zone': 'a' }, taints: ['dedicated=db:NoSchedule', 'gpu:NoExecute'] });
    expect(inv.data.nodes).toMatchObject({ interface: 'eth1', gateway: '10.66.6.20', minimum: { memory: '4G', cpus: 2 } });
  });

  it.each([
    ['a label key with a space', 'labels: { "bad key": x }', /hosts\[3\]\.labels[\s\S]*label key/],
    ['a label value too long', `labels: { disk: ${'a'.repeat(64)} }`, /label value/],
    ['a taint without effect', 'taints: ["dedicated=db"]', /taint/],
    ['a taint with an unknown effect', 'taints: ["dedicated=db:Sometimes"]', /taint/],
  ])('refuses %s', (_, extra, message) => {
    expect(() => parse(withNode02(extra))).toThrow(message);
  });

  it('refuses labels on a host that is not a worker, and a gateway outside the cluster network', () => {
    expect(() => parse(`${VALID_INVENTORY.replace('roles: [master, storage] }', 'roles: [master, storage], labels: { a: b } }')}${NODES}`)).toThrow(/"data1" is not a worker/);
    expect(() => parse(withNode02('labels: {}', NODES.replace('10.66.6.20', '10.1.1.1')))).toThrow(/gateway 10\.1\.1\.1 is outside the cluster network/);
    expect(() => parse(withNode02('labels: {}', NODES.replace('eth1', 'eth1; reboot')))).toThrow(/interface name/);
    expect(() => parse(withNode02('labels: {}', NODES.replace('4G', '4GB')))).toThrow(/size/);
  });

  it('the bundled inventory is valid and has the nodes block', () => {
    const file = join(import.meta.dirname, '..', '..', '..', 'inventory.yaml');
    expect(parse(readFileSync(file, 'utf8')).data.nodes?.interface).toBe('eth1');
  });
});
