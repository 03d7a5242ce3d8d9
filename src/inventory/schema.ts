import type Ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { requireCjs } from '../require.js';
import { parseAbsoluteFile, parseBackupDestination } from './destination.js';

const ipaddr = requireCjs('ipaddr.js') as typeof Ipaddr;

/** The shape of inventory.yaml. Cross-field rules live in checks.ts. */

const LABEL = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;

const hostName = z
  .string()
  .max(63)
  .regex(LABEL, { message: 'expected a host name made of lowercase letters, digits and "-" (a DNS-1123 label)' });

const ipv4 = z.string().refine((v) => ipaddr.IPv4.isValidFourPartDecimal(v), { message: 'expected an IPv4 address such as 10.66.6.1' });

const cidr = z.string().refine(
  (v) => {
    if (!ipaddr.IPv4.isValidCIDR(v)) return false;
    const [addr, len] = ipaddr.IPv4.parseCIDR(v);
    return ipaddr.IPv4.networkAddressFromCIDR(v).toString() === addr.toString() && len >= 0;
  },
  { message: 'expected a network in CIDR form with its network address, such as 10.100.1.0/24' },
);

const portal = z.string().refine(
  (v) => {
    const m = /^(.+):(\d{1,5})$/.exec(v);
    return !!m && ipaddr.IPv4.isValidFourPartDecimal(m[1] ?? '') && Number(m[2]) > 0 && Number(m[2]) < 65536;
  },
  { message: 'expected an iSCSI portal "address:port" such as 10.66.6.1:3260' },
);

const hostPort = z.string().refine(
  (v) => {
    const m = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?:(\d{1,5})$/i.exec(v);
    return !!m && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
  },
  { message: 'expected "name:port" with its port, such as registry.cluster.enssib.fr:5000' },
);

const path = z.string().min(1, { message: 'expected a file path' });
const seconds = z.number().int().positive().max(86_400);

export const roles = ['master', 'storage', 'worker'] as const;
export type Role = (typeof roles)[number];

const sshEndpoint = z.strictObject({
  /** Host name or alias from the ssh config; default: the host's name. */
  host: z.string().min(1).regex(/^[^\s'"`$;&|<>\\]+$/, { message: 'expected a host name or ssh alias without spaces or shell characters' }).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  user: z.string().regex(/^[a-z_][a-z0-9_.-]*$/, { message: 'expected a Unix user name' }).optional(),
});

/** A Kubernetes label key: an optional DNS-subdomain prefix and "/", then a name of at most 63 characters. */
export const LABEL_KEY = /^(?=.{1,317}$)(([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
/** A Kubernetes label value: empty, or at most 63 characters of letters, digits, "-", "_", "." starting and ending alphanumeric. */
export const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;
/** A taint as kubectl writes it: key[=value]:Effect. */
export const TAINT = /^([^=:\s]+)(=([^=:\s]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$/;

const labelValue = z.string().regex(LABEL_VALUE, { message: 'expected a Kubernetes label value: at most 63 letters, digits, "-", "_", ".", starting and ending with a letter or digit' });
const taint = z.string().refine((v) => {
  const m = TAINT.exec(v);
  return !!m && LABEL_KEY.test(m[1] ?? '') && LABEL_VALUE.test(m[3] ?? '');
}, { message: 'expected a taint "key=value:Effect" (Effect: NoSchedule, PreferNoSchedule or NoExecute)' });

const host = z.strictObject({
  name: hostName,
  address: ipv4,
  roles: z.array(z.enum(roles)).min(1, { message: 'expected at least one role (master, storage, worker)' }),
  podSubnet: cidr.optional(),
  /** Workers: Kubernetes labels and taints `enssib node bootstrap` sets on the node. */
  labels: z
    .record(z.string(), labelValue)
    .refine((l) => Object.keys(l).every((k) => LABEL_KEY.test(k)), { message: 'expected Kubernetes label keys such as "disk" or "enssib.fr/disk" (letters, digits, "-", "_", ".", an optional DNS prefix and "/")' })
    .optional(),
  taints: z.array(taint).optional(),
  ssh: sshEndpoint.optional(),
});

const size = z.string().regex(/^\d+(\.\d+)?[MGT]$/, { message: 'expected a size with a binary unit, such as 4G or 512M' });
const ifName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$/, { message: 'expected a network interface name such as eth1 or ens4 (at most 15 characters)' });

/** What `enssib node bootstrap` needs beyond the hosts: minimums, the Kubernetes packages, the network. */
const nodes = z.strictObject({
  minimum: z.strictObject({ memory: size.optional(), cpus: z.number().int().min(1).max(4096).optional() }).optional(),
  /** The cluster network's interface on the workers. */
  interface: ifName,
  /** Every worker's default route (the keepalived-vip host); default: nfs.vip. */
  gateway: ipv4.optional(),
  /** The apt repository of kubelet and kubeadm, and its signing key (a local file, installed in /etc/apt/keyrings). */
  apt: z.strictObject({
    url: z.url({ protocol: /^https?$/, message: 'expected the repository URL, such as https://pkgs.k8s.io/core:/stable:/v1.30/deb/' }),
    suite: z.string().regex(/^[A-Za-z0-9_./-]+$/, { message: 'expected an apt suite such as "/" or "bookworm"' }).optional(),
    components: z.array(z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: 'expected an apt component such as "main"' })).optional(),
    key: path,
  }),
  /** The most clock difference accepted with enssib's machine, in seconds (default 2). */
  maxClockSkew: z.number().positive().max(3600).optional(),
});

export const inventorySchema = z.strictObject({
  site: z.string().min(1).optional(),
  ssh: z
    .strictObject({
      config: path.optional(),
      knownHosts: path.optional(),
      user: sshEndpoint.shape.user,
      connectTimeout: seconds.optional(),
      commandTimeout: seconds.optional(),
      controlPersist: seconds.optional(),
    })
    .optional(),
  networks: z.strictObject({
    pods: cidr,
    services: cidr,
    cluster: z.strictObject({ cidr, mtu: z.number().int().min(576).max(65535) }),
    users: cidr.optional(),
  }),
  hosts: z.array(host).min(1, { message: 'expected at least one host' }),
  registry: z.strictObject({
    host: hostPort,
    ca: path.optional(),
    auth: z.strictObject({ username: z.string().min(1), passwordFile: path }).optional(),
  }),
  kubernetes: z.strictObject({
    api: z.url({ protocol: /^https?$/, message: 'expected the API server URL, such as https://api.cluster.enssib.fr:6443' }),
    kubeconfig: path.optional(),
    context: z.string().min(1).optional(),
    namespace: hostName.optional(),
  }),
  storage: z.strictObject({
    volumeGroup: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/, { message: 'expected an LVM volume group name' }),
    drbdResource: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, { message: 'expected a DRBD resource name' }),
    metadataHost: hostName,
    iqnPrefix: z.string().regex(/^iqn\.\d{4}-\d{2}\.[a-z0-9.-]+$/, { message: 'expected an IQN prefix such as iqn.2016-04.fr.enssib' }),
    portals: z.array(portal).min(1),
    targetDriver: z.enum(['scst', 'lio']),
    lockFile: path.optional(),
  }),
  nfs: z
    .strictObject({
      vip: ipv4,
      /** The transport NFS mounts use (default tcp); Debian 12's kernel cannot mount over udp. */
      protocol: z.enum(['tcp', 'udp']).optional(),
    })
    .optional(),
  nodes: nodes.optional(),
  keepalivedVip: z.strictObject({ configMap: hostName, namespace: hostName }).optional(),
  backup: z
    .strictObject({
      /** An absolute folder on the metadata storage server, or ssh://[user@]host[:port]/folder on a backup host reached from it. */
      destination: z.string().superRefine((v, ctx) => {
        const d = parseBackupDestination(v);
        if ('error' in d) ctx.addIssue({ code: 'custom', message: d.error });
      }),
      /** Copy-on-write size of each snapshot: a share of the volume ("20%", the default) or a size ("10G"). */
      snapshotSize: z.string().min(1).optional(),
      /** How long a volume may run on one path during its backup before the summary warns ("2h", the default; "90m", "45s"). */
      maxSinglePath: z.string().min(1).optional(),
      retention: z.strictObject({
        daily: z.number().int().min(0).max(3650).optional(),
        weekly: z.number().int().min(0).max(520).optional(),
        monthly: z.number().int().min(0).max(1200).optional(),
      }),
      /** How a snapshot is stored: `image` (zstd file, the default) or `borg` (a deduplicated, encrypted borg repository `<destination>/borg`). */
      method: z.enum(['image', 'borg']).optional(),
      borg: z
        .strictObject({
          /** Root-only file on the metadata storage server holding the repository's passphrase (borg reads it itself). */
          passphraseFile: z.string().superRefine((v, ctx) => {
            const f = parseAbsoluteFile(v);
            if (typeof f !== 'string') ctx.addIssue({ code: 'custom', message: f.error });
          }),
        })
        .optional(),
    })
    .superRefine((b, ctx) => {
      if (b.method === 'borg' && !b.borg) ctx.addIssue({ code: 'custom', path: ['method'], message: 'method borg needs borg: { passphraseFile: /root/… } (a root-only file on the metadata storage server holding the repository\'s passphrase)' });
    })
    .optional(),
  journal: path.optional(),
});

export type InventoryData = z.infer<typeof inventorySchema>;
export type HostData = z.infer<typeof host>;
export type NodesData = z.infer<typeof nodes>;
