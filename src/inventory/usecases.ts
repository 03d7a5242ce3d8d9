import type { Context } from '../context.js';
import { ConfigError, ExitCode } from '../errors.js';
import { fileFindings } from './files.js';
import { findingLines } from './load.js';
import type { Inventory } from './inventory.js';

export function hostRows(inv: Inventory) {
  return inv.hosts.map((h) => {
    const ssh = inv.ssh(h.name);
    return {
      name: h.name,
      roles: h.roles,
      address: h.address,
      podSubnet: h.podSubnet ?? null,
      ssh: `${ssh.user ? `${ssh.user}@` : ''}${ssh.target}${ssh.port ? `:${ssh.port}` : ''}`,
    };
  });
}

/** `enssib inventory check`: loading validates everything; say what was checked. */
export async function checkCommand(ctx: Context): Promise<number> {
  const inv = ctx.inventory();
  const d = inv.data;
  const files = fileFindings(inv);
  if (files.length > 0) {
    const lines = findingLines(inv.file, files);
    throw new ConfigError(lines[0] as string, lines.slice(1));
  }
  ctx.out.result(
    () => ({ file: inv.file, valid: true, hosts: inv.hosts.length, workers: inv.workers().length, storageServers: inv.storageServers().length }),
    () => [
      `${inv.file}: valid`,
      `  ${inv.hosts.length} hosts: ${inv.masters().length} masters, ${inv.storageServers().length} storage servers, ${inv.workers().length} workers`,
      `  pods ${d.networks.pods}, services ${d.networks.services}, cluster ${d.networks.cluster.cidr} (MTU ${d.networks.cluster.mtu})`,
      `  storage: ${d.storage.volumeGroup} on DRBD ${d.storage.drbdResource}, metadata host ${d.storage.metadataHost}, ${d.storage.targetDriver} targets on ${d.storage.portals.join(', ')}`,
    ],
  );
  if (d.networks.cluster.mtu !== 9000) ctx.out.warn(`the cluster network's MTU is ${d.networks.cluster.mtu}; the site runs 9000 on it (NFS and iSCSI traffic)`);
  return ExitCode.ok;
}

/** `enssib inventory show`: hosts, roles, addresses, pod subnets, ssh endpoints. */
export async function showCommand(ctx: Context): Promise<number> {
  const inv = ctx.inventory();
  const rows = hostRows(inv);
  const d = inv.data;
  ctx.out.result(
    () => ({ file: inv.file, site: d.site ?? null, networks: d.networks, hosts: rows, registry: d.registry.host, kubernetes: d.kubernetes.api, storage: d.storage }),
    () => [
      ...ctx.out.table(
        ['HOST', 'ROLES', 'ADDRESS', 'POD SUBNET', 'SSH'],
        rows.map((r) => [r.name, r.roles.join(','), r.address, r.podSubnet ?? '-', r.ssh]),
      ),
      '',
      `registry ${d.registry.host}   API ${d.kubernetes.api}`,
      `storage  ${d.storage.volumeGroup} (DRBD ${d.storage.drbdResource}), metadata host ${d.storage.metadataHost}, ${d.storage.targetDriver} on ${d.storage.portals.join(', ')}`,
    ],
  );
  return ExitCode.ok;
}
