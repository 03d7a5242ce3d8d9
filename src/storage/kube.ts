import type { KubeConfig } from '@kubernetes/client-node';
import { OperationError } from '../errors.js';
import type { Filesystem } from './lvm.js';
import { iqnOf, type VolumeSite } from './volume.js';

/**
 * The Kubernetes side of a volume: the in-tree iSCSI volume stanza, the
 * PersistentVolume enssib creates with --pv, and the API queries behind
 * "used by" and the delete guard. @kubernetes/client-node is imported lazily.
 */

export interface IscsiStanza {
  targetPortal: string;
  portals: string[];
  iqn: string;
  lun: number;
  fsType?: string;
}

export function iscsiStanza(site: VolumeSite, name: string, fs: Filesystem): IscsiStanza {
  const [first, ...rest] = site.servers.map((s) => s.portal);
  return { targetPortal: first as string, portals: rest, iqn: iqnOf(site, name), lun: 0, ...(fs !== 'none' ? { fsType: fs } : {}) };
}

/** The stanza as YAML lines under `iscsi:` (what a pod's or a PV's spec takes). */
export function stanzaYaml(s: IscsiStanza): string[] {
  return [
    'iscsi:',
    `  targetPortal: ${s.targetPortal}`,
    `  portals: [${s.portals.join(', ')}]`,
    `  iqn: ${s.iqn}`,
    `  lun: ${s.lun}`,
    ...(s.fsType ? [`  fsType: ${s.fsType}`] : []),
  ];
}

/** A Kubernetes quantity for a size in bytes: exact binary suffix when there is one. */
export function quantity(bytes: number): string {
  for (const [u, n] of [
    ['Ti', 1024 ** 4],
    ['Gi', 1024 ** 3],
    ['Mi', 1024 ** 2],
    ['Ki', 1024],
  ] as const) {
    if (bytes % n === 0) return `${bytes / n}${u}`;
  }
  return String(bytes);
}

export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'enssib' };

export interface PvManifest {
  apiVersion: 'v1';
  kind: 'PersistentVolume';
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    capacity: { storage: string };
    accessModes: string[];
    persistentVolumeReclaimPolicy: 'Retain';
    volumeMode: 'Filesystem';
    iscsi: IscsiStanza;
  };
}

export function pvManifest(site: VolumeSite, name: string, sizeBytes: number, fs: Filesystem): PvManifest {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name, labels: { ...MANAGED_BY, 'enssib.fr/volume': name } },
    spec: {
      capacity: { storage: quantity(sizeBytes) },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Retain',
      volumeMode: 'Filesystem',
      iscsi: iscsiStanza(site, name, fs),
    },
  };
}

// ---------------------------------------------------------------- API

export interface VolumeUser {
  /** "PersistentVolume mail (Bound to default/mail-data)" or "Pod default/mail-0". */
  kind: 'PersistentVolume' | 'Pod';
  name: string;
  namespace?: string;
  detail: string;
  /** A PV that a claim binds (or may bind): blocks a delete. */
  binding: boolean;
}

interface Obj {
  [k: string]: unknown;
}
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function apiError(e: unknown, what: string): OperationError {
  const err = e as { code?: number; body?: unknown; message?: string };
  const body = typeof err.body === 'string' ? err.body : JSON.stringify(err.body ?? '');
  return new OperationError(`the Kubernetes API did not answer ${what}: ${err.code ? `HTTP ${err.code}` : (err.message ?? String(e))}`, body && body !== '""' ? [body.slice(0, 300)] : []);
}

/** PersistentVolumes and pods that use the target `iqn` (in-tree iSCSI volumes). */
export async function volumeUsers(kc: KubeConfig, iqns: readonly string[]): Promise<Map<string, VolumeUser[]>> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const api = kc.makeApiClient(CoreV1Api);
  const out = new Map<string, VolumeUser[]>(iqns.map((i) => [i, []]));
  let pvs: unknown[];
  let pods: unknown[];
  try {
    pvs = arr(obj(await api.listPersistentVolume()).items);
    pods = arr(obj(await api.listPodForAllNamespaces()).items);
  } catch (e) {
    throw apiError(e, 'the list of PersistentVolumes and pods');
  }
  const claimToIqn = new Map<string, string>();
  for (const pv of pvs) {
    const meta = obj(obj(pv).metadata);
    const spec = obj(obj(pv).spec);
    const iqn = str(obj(spec.iscsi).iqn);
    if (!out.has(iqn)) continue;
    const claim = obj(spec.claimRef);
    const phase = str(obj(obj(pv).status).phase) || 'Unknown';
    const claimName = str(claim.name);
    const claimNs = str(claim.namespace);
    if (claimName) claimToIqn.set(`${claimNs}/${claimName}`, iqn);
    out.get(iqn)?.push({
      kind: 'PersistentVolume',
      name: str(meta.name),
      detail: claimName ? `${phase}, claim ${claimNs}/${claimName}` : phase,
      binding: true,
    });
  }
  for (const pod of pods) {
    const meta = obj(obj(pod).metadata);
    const ns = str(meta.namespace);
    for (const vol of arr(obj(obj(pod).spec).volumes)) {
      const v = obj(vol);
      const direct = str(obj(v.iscsi).iqn);
      const viaClaim = claimToIqn.get(`${ns}/${str(obj(v.persistentVolumeClaim).claimName)}`);
      const iqn = out.has(direct) ? direct : viaClaim;
      if (iqn) out.get(iqn)?.push({ kind: 'Pod', name: str(meta.name), namespace: ns, detail: `${str(obj(obj(pod).spec).nodeName) || 'not scheduled'}`, binding: false });
    }
  }
  return out;
}

/** Creates the PersistentVolume; an existing one for the same target is left as it is. */
export async function createPersistentVolume(kc: KubeConfig, pv: PvManifest): Promise<{ changed: boolean; message: string }> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const api = kc.makeApiClient(CoreV1Api);
  try {
    const existing = obj(await api.readPersistentVolume({ name: pv.metadata.name }));
    const iqn = str(obj(obj(obj(existing).spec).iscsi).iqn);
    if (iqn === pv.spec.iscsi.iqn) return { changed: false, message: `PersistentVolume ${pv.metadata.name} exists` };
    throw new OperationError(`PersistentVolume ${pv.metadata.name} exists and is not this volume (${iqn ? `iSCSI ${iqn}` : 'another volume source'})`);
  } catch (e) {
    if (e instanceof OperationError) throw e;
    if ((e as { code?: number }).code !== 404) throw apiError(e, `for PersistentVolume ${pv.metadata.name}`);
  }
  try {
    await api.createPersistentVolume({ body: pv as unknown as Parameters<typeof api.createPersistentVolume>[0]['body'] });
  } catch (e) {
    throw apiError(e, `when creating PersistentVolume ${pv.metadata.name}`);
  }
  return { changed: true, message: `PersistentVolume ${pv.metadata.name} created` };
}
