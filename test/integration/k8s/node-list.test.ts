import { describe, expect, it } from 'vitest';
import { enssib } from '../../support/cli.js';
import { standInSite } from '../../support/kube-stand-in/fixture.js';

/**
 * `enssib node list` through the built CLI against the Kubernetes STAND-IN API
 * server (a small API server on loopback, not a cluster): the inventory's
 * workers joined with the nodes the API server lists (Ready, kubelet version,
 * pod subnet checked against the inventory, enssib volumes in use); without an
 * API server, the inventory alone, saying so.
 */
const env = standInSite();

const node = (name: string, o: { ready?: string; message?: string; kubelet?: string; podCIDR?: string; ip?: string; volumes?: string[] } = {}) => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name },
  spec: o.podCIDR ? { podCIDR: o.podCIDR } : {},
  status: {
    conditions: [{ type: 'Ready', status: o.ready ?? 'True', reason: (o.ready ?? 'True') === 'True' ? 'KubeletReady' : 'KubeletNotReady', message: o.message ?? '' }],
    nodeInfo: { kubeletVersion: o.kubelet ?? 'v1.31.4' },
    addresses: o.ip ? [{ type: 'InternalIP', address: o.ip }] : [],
    ...(o.volumes ? { volumesInUse: o.volumes } : {}),
  },
});

describe('node list (stand-in API server)', () => {
  it('joins the workers with the live nodes: Ready, kubelet, pod subnet, volumes; says what disagrees', async () => {
    env.standIn.seed(
      node('node01', {
        podCIDR: '10.100.1.0/24',
        ip: '10.66.6.11',
        volumes: ['kubernetes.io/iscsi/10.66.6.1:3260:iqn.2016-04.fr.enssib:mail:0', 'kubernetes.io/iscsi/10.66.6.2:3260:iqn.2016-04.fr.enssib:mail:0', 'kubernetes.io/iscsi/10.66.6.1:3260:iqn.2016-04.fr.enssib:ldap:0', 'kubernetes.io/nfs/x'],
      }),
    );
    env.standIn.seed(node('data1'));
    env.standIn.seed(node('node07', { kubelet: 'v1.30.0', podCIDR: '10.100.7.0/24', ip: '10.66.6.17' }));
    const r = await enssib(['-i', env.site.inventory, 'node', 'list']);
    expect(r.code, r.stderr).toBe(0);
    // (the stand-in's kubeconfig is plain HTTP, which enssib warns about first)
    expect(r.stderr.split('\n').at(-1)).toBe(`Inventory and cluster: the nodes as the API server ${env.standIn.url} sees them.`);
    expect(r.stdout.split('\n').map((l) => l.split(/\s{2,}/))).toEqual([
      ['WORKER', 'ADDRESS', 'POD SUBNET', 'STATUS', 'KUBELET', 'VOLUMES'],
      ['node01', '10.66.6.11', '10.100.1.0/24', 'Ready', 'v1.31.4', 'ldap,mail'],
      ['node07 (not in the inventory)', '10.66.6.17', '10.100.7.0/24', 'Ready', 'v1.30.0', '-'],
    ]);

    env.standIn.seed(node('node01', { ready: 'False', message: 'container runtime network not ready', podCIDR: '10.100.9.0/24', ip: '10.66.6.11' }));
    const sick = await enssib(['-i', env.site.inventory, 'node', 'list']);
    expect(sick.code).toBe(0);
    expect(sick.stdout).toMatch(/^node01 +10\.66\.6\.11 +10\.100\.1\.0\/24 +NotReady \(KubeletNotReady: container runtime network not ready\) +v1\.31\.4 +-$/m);
    expect(sick.stdout).toContain("! node01: the node's pod subnet is 10.100.9.0/24, the inventory says 10.100.1.0/24");

    const json = await enssib(['-i', env.site.inventory, 'node', 'list', '-o', 'json']);
    const doc = JSON.parse(json.stdout) as { live: boolean; server: string; nodes: { name: string; inInventory: boolean; node: { ready: boolean; podCidr: string } | null; problems: string[] }[] };
    expect(doc).toMatchObject({ live: true, server: env.standIn.url });
    expect(doc.nodes.find((n) => n.name === 'node01')).toMatchObject({ inInventory: true, node: { ready: false, podCidr: '10.100.9.0/24' } });
    expect(doc.nodes.find((n) => n.name === 'node01')?.problems).toEqual([
      'not Ready: NotReady (KubeletNotReady: container runtime network not ready)',
      "the node's pod subnet is 10.100.9.0/24, the inventory says 10.100.1.0/24",
    ]);
    expect(doc.nodes.find((n) => n.name === 'node07')).toMatchObject({ inInventory: false, problems: ['in the cluster but not in the inventory'] });

    // a client dry run contacts nothing, the API server included
    const before = env.standIn.requests.length;
    const dry = await enssib(['-i', env.site.inventory, 'node', 'list', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stderr.split('\n').at(-1)).toMatch(/^Inventory only: a client dry run contacts nothing\./);
    expect(env.standIn.requests.length).toBe(before);
  });

  it('a worker that is no node says so', async () => {
    for (const n of ['node01', 'node07', 'data1']) env.standIn.remove('v1', 'Node', '', n);
    const r = await enssib(['-i', env.site.inventory, 'node', 'list']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^node01 +10\.66\.6\.11 +10\.100\.1\.0\/24 +not a node +- +-$/m);
  });

  it('the API server gone: the inventory only, and why; exit 0', async () => {
    const url = env.standIn.url;
    await env.standIn.close();
    const r = await enssib(['-i', env.site.inventory, 'node', 'list']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.split('\n').at(-1)).toBe(
      `Inventory only: cannot reach the Kubernetes API server at ${url}: connection refused. STATUS, KUBELET and VOLUMES need the API server (kubeconfig: --kubeconfig, KUBECONFIG or kubernetes.kubeconfig).`,
    );
    expect(r.stdout.split('\n').map((l) => l.split(/\s{2,}/))).toEqual([
      ['WORKER', 'ADDRESS', 'POD SUBNET', 'SSH'],
      ['node01', '10.66.6.11', '10.100.1.0/24', 'node01'],
    ]);
    const json = JSON.parse((await enssib(['-i', env.site.inventory, 'node', 'list', '-o', 'json'])).stdout) as { live: boolean; why: string; nodes: { node: unknown }[] };
    expect(json).toMatchObject({ live: false, why: expect.stringContaining('connection refused') });
    expect(json.nodes).toMatchObject([{ node: null }]);
  });
});
