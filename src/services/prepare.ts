import { ConfigError } from '../errors.js';
import type { ServiceImage } from '../site/image.js';
import { cloneJson, MANAGED_BY, NAME_LABEL, type KObject, type ObjectRef } from '../k8s/types.js';
import { listServices, loadService, type ServiceFolder } from '../site/folder.js';
import { imageTarget, imageUses, pinnedReference, setImage, type ImageUse } from './images.js';
import { readManifests, type Manifest } from './manifests.js';

/** A service folder with its manifests read and checked. */
export interface ServiceSource {
  folder: ServiceFolder;
  manifests: Manifest[];
}

/** An object as enssib applies it: labelled, images pinned. */
export interface PreparedObject {
  manifest: Manifest;
  object: KObject;
}

export interface PreparedService {
  name: string;
  folder: ServiceFolder;
  objects: PreparedObject[];
  /** The service images its containers use. */
  images: ServiceImage[];
}

export function loadSource(root: string, name: string): ServiceSource {
  const folder = loadService(root, name);
  const manifests = readManifests(folder.dir);
  if (manifests.length === 0) throw new ConfigError(`${folder.dir}: no Kubernetes objects (no .yaml file besides enssib.yaml)`, ['A service folder holds its Dockerfile and its Deployment, Service and policy YAML.']);
  return { folder, manifests };
}

/** Image name → service, for every folder under services/ (a folder whose enssib.yaml is broken counts under its own name). */
export function imageCatalogue(root: string, loaded: ServiceFolder[] = []): Map<string, string> {
  const cat = new Map<string, string>();
  for (const f of loaded) cat.set(f.settings.image, f.name);
  for (const name of listServices(root)) {
    if ([...cat.values()].includes(name)) continue;
    try {
      const f = loadService(root, name);
      cat.set(f.settings.image, f.name);
    } catch {
      cat.set(name, name);
    }
  }
  return cat;
}

export interface ImagePlan {
  /** Per service: its image uses that point at a service image (pinned at deploy). */
  pins: Map<string, { use: ImageUse; service: string }[]>;
  /** Every service whose image is needed. */
  services: string[];
  warnings: string[];
}

/** Which service images the manifests use (and refuse references to services that do not exist). */
export function planImages(sources: ServiceSource[], catalogue: Map<string, string>, registryHost: string): ImagePlan {
  const pins = new Map<string, { use: ImageUse; service: string }[]>();
  const needed = new Set<string>();
  const warnings: string[] = [];
  for (const s of sources) {
    const list: { use: ImageUse; service: string }[] = [];
    for (const use of imageUses(s.manifests)) {
      const t = imageTarget(use, catalogue, registryHost);
      if (t.kind !== 'service') continue;
      if (t.warning) warnings.push(t.warning);
      list.push({ use, service: t.service });
      needed.add(t.service);
    }
    pins.set(s.folder.name, list);
  }
  return { pins, services: [...needed].sort(), warnings };
}

/** Order of apply: what others depend on first (namespaces, accounts, config and secrets, claims, services, policies), workloads last. */
export function kindRank(kind: string): number {
  const ranks: Record<string, number> = {
    Namespace: 0,
    CustomResourceDefinition: 1,
    ServiceAccount: 2,
    ClusterRole: 2,
    Role: 2,
    ClusterRoleBinding: 3,
    RoleBinding: 3,
    Secret: 4,
    ConfigMap: 4,
    PersistentVolume: 5,
    PersistentVolumeClaim: 6,
    Service: 7,
    NetworkPolicy: 8,
    GlobalNetworkPolicy: 8,
    Deployment: 10,
    StatefulSet: 10,
    DaemonSet: 10,
    Job: 11,
    CronJob: 11,
  };
  return ranks[kind] ?? 9;
}

/** Adds enssib's labels to an object's own metadata — never to its selector or pod template. */
export function labelled(o: KObject, service: string): KObject {
  const c = cloneJson(o);
  c.metadata.labels = { ...(c.metadata.labels ?? {}), [NAME_LABEL]: service, [MANAGED_BY]: 'enssib' };
  return c;
}

/** The objects of a service as they will be applied, in apply order. */
export function prepareService(source: ServiceSource, plan: ImagePlan, images: ServiceImage[]): PreparedService {
  const name = source.folder.name;
  const byService = new Map(images.map((i) => [i.service, i]));
  const copies = new Map<Manifest, KObject>(source.manifests.map((m) => [m, labelled(m.object, name)]));
  const used = new Map<string, ServiceImage>();
  for (const { use, service } of plan.pins.get(name) ?? []) {
    const img = byService.get(service);
    if (!img) throw new ConfigError(`no image was produced for service "${service}" (used by ${use.manifest.file})`);
    setImage(copies.get(use.manifest) as KObject, use.path, pinnedReference(img));
    used.set(service, img);
  }
  const objects = source.manifests
    .map((m, i) => ({ m, i }))
    .sort((a, b) => kindRank(a.m.object.kind) - kindRank(b.m.object.kind) || a.i - b.i)
    .map(({ m }) => ({ manifest: m, object: copies.get(m) as KObject }));
  return { name, folder: source.folder, objects, images: [...used.values()] };
}

/** Kinds that live outside namespaces (for display before the API is asked). */
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'Node',
  'PersistentVolume',
  'StorageClass',
  'CustomResourceDefinition',
  'ClusterRole',
  'ClusterRoleBinding',
  'PriorityClass',
  'IngressClass',
  'GlobalNetworkPolicy',
  'GlobalNetworkSet',
  'HostEndpoint',
  'IPPool',
  'FelixConfiguration',
  'BGPConfiguration',
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
]);

export function probablyNamespaced(kind: string): boolean {
  return !CLUSTER_SCOPED.has(kind);
}

/** The object's reference with the namespace it will land in (object's own, else the default). */
export function targetRef(o: KObject, defaultNamespace: string, namespaced = probablyNamespaced(o.kind)): ObjectRef {
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: o.metadata.name,
    ...(namespaced ? { namespace: o.metadata.namespace ?? defaultNamespace } : {}),
  };
}
