import type Ipaddr from 'ipaddr.js';
import type { InventoryData } from './schema.js';
import { requireCjs } from '../require.js';

const ipaddr = requireCjs('ipaddr.js') as typeof Ipaddr;

/** A problem found in the inventory, located by its path in the YAML document. */
export interface Finding {
  path: (string | number)[];
  message: string;
}

function inCidr(address: string, cidr: string): boolean {
  return ipaddr.IPv4.parse(address).match(ipaddr.IPv4.parseCIDR(cidr));
}

function overlaps(a: string, b: string): boolean {
  const [na, la] = ipaddr.IPv4.parseCIDR(a);
  const [nb, lb] = ipaddr.IPv4.parseCIDR(b);
  return la <= lb ? nb.match(na, la) : na.match(nb, lb);
}

/** Rules that span fields; the schema has already checked each field's type. */
export function crossCheck(inv: InventoryData): Finding[] {
  const out: Finding[] = [];
  const names = new Map<string, number>();
  const addresses = new Map<string, number>();
  const storage = inv.hosts.filter((h) => h.roles.includes('storage'));

  inv.hosts.forEach((h, i) => {
    const seenName = names.get(h.name);
    if (seenName !== undefined) out.push({ path: ['hosts', i, 'name'], message: `duplicate host name "${h.name}" (also hosts[${seenName}])` });
    else names.set(h.name, i);
    const seenAddr = addresses.get(h.address);
    if (seenAddr !== undefined) out.push({ path: ['hosts', i, 'address'], message: `duplicate address ${h.address} (also hosts[${seenAddr}], ${inv.hosts[seenAddr]?.name})` });
    else addresses.set(h.address, i);
    if (new Set(h.roles).size !== h.roles.length) out.push({ path: ['hosts', i, 'roles'], message: 'a role is listed twice' });
    if (!inCidr(h.address, inv.networks.cluster.cidr)) {
      out.push({ path: ['hosts', i, 'address'], message: `address ${h.address} is outside the cluster network ${inv.networks.cluster.cidr}` });
    }
    if (h.roles.includes('worker') && !h.podSubnet) {
      out.push({ path: ['hosts', i], message: `worker "${h.name}" has no podSubnet (each worker owns a fixed /24 of ${inv.networks.pods})` });
    }
    if ((h.labels || h.taints) && !h.roles.includes('worker')) {
      out.push({ path: ['hosts', i, h.labels ? 'labels' : 'taints'], message: `"${h.name}" is not a worker: labels and taints are set on workers by \`enssib node bootstrap\`` });
    }
    if (h.podSubnet) {
      if (!h.roles.includes('worker')) out.push({ path: ['hosts', i, 'podSubnet'], message: `"${h.name}" is not a worker and cannot own a pod subnet` });
      else if (ipaddr.IPv4.parseCIDR(h.podSubnet)[1] !== 24) {
        out.push({ path: ['hosts', i, 'podSubnet'], message: `pod subnet ${h.podSubnet} is a /${ipaddr.IPv4.parseCIDR(h.podSubnet)[1]}; each worker owns exactly a /24 of ${inv.networks.pods}` });
      } else if (!overlaps(h.podSubnet, inv.networks.pods) || ipaddr.IPv4.parseCIDR(h.podSubnet)[1] < ipaddr.IPv4.parseCIDR(inv.networks.pods)[1]) {
        out.push({ path: ['hosts', i, 'podSubnet'], message: `pod subnet ${h.podSubnet} is outside the pods network ${inv.networks.pods}` });
      } else {
        inv.hosts.slice(0, i).forEach((o, j) => {
          if (o.podSubnet && overlaps(o.podSubnet, h.podSubnet as string)) {
            out.push({ path: ['hosts', i, 'podSubnet'], message: `pod subnet ${h.podSubnet} overlaps ${o.podSubnet} of "${o.name}" (hosts[${j}])` });
          }
        });
      }
    }
  });

  const nets = inv.networks;
  const pairs: [string, string, string, string][] = [
    ['pods', nets.pods, 'services', nets.services],
    ['pods', nets.pods, 'cluster', nets.cluster.cidr],
    ['services', nets.services, 'cluster', nets.cluster.cidr],
  ];
  if (nets.users) pairs.push(['users', nets.users, 'cluster', nets.cluster.cidr], ['users', nets.users, 'pods', nets.pods]);
  for (const [an, a, bn, b] of pairs) {
    if (overlaps(a, b)) out.push({ path: ['networks', an], message: `the ${an} network ${a} overlaps the ${bn} network ${b}` });
  }

  if (storage.length === 0) {
    out.push({ path: ['hosts'], message: 'no host has the "storage" role: enssib needs the storage servers (data1, data2)' });
  }
  const meta = inv.hosts.find((h) => h.name === inv.storage.metadataHost);
  if (!meta) out.push({ path: ['storage', 'metadataHost'], message: `metadata host "${inv.storage.metadataHost}" is not a host of the inventory` });
  else if (!meta.roles.includes('storage')) out.push({ path: ['storage', 'metadataHost'], message: `metadata host "${meta.name}" is not a storage server` });

  inv.storage.portals.forEach((p, i) => {
    const addr = p.slice(0, p.lastIndexOf(':'));
    if (!storage.some((h) => h.address === addr)) {
      out.push({ path: ['storage', 'portals', i], message: `portal ${p} is not the address of a storage server (${storage.map((h) => h.address).join(', ') || 'none'})` });
    }
  });
  if (new Set(inv.storage.portals).size !== inv.storage.portals.length) out.push({ path: ['storage', 'portals'], message: 'a portal is listed twice' });

  if (inv.nfs) {
    if (!inCidr(inv.nfs.vip, nets.cluster.cidr)) out.push({ path: ['nfs', 'vip'], message: `NFS VIP ${inv.nfs.vip} is outside the cluster network ${nets.cluster.cidr}` });
    const owner = inv.hosts.find((h) => h.address === inv.nfs?.vip);
    if (owner) out.push({ path: ['nfs', 'vip'], message: `NFS VIP ${inv.nfs.vip} is the address of host "${owner.name}"; a virtual IP must be free` });
  }
  if (inv.nodes?.gateway && !inCidr(inv.nodes.gateway, nets.cluster.cidr)) {
    out.push({ path: ['nodes', 'gateway'], message: `the workers' gateway ${inv.nodes.gateway} is outside the cluster network ${nets.cluster.cidr}` });
  }
  return out;
}
