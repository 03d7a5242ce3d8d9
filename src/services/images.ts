import type { Context } from '../context.js';
import { ConfigError } from '../errors.js';
import type { ServiceImage } from '../site/image.js';
import { isRecord, type KObject } from '../k8s/types.js';
import type { Manifest } from './manifests.js';

/**
 * Images in manifests. A container whose image is a service's bare image name
 * (`image: ldap`, skaffold's convention) gets the image that service builds,
 * pinned by digest: `registry/ldap@sha256:…`.
 */

/** Builds or finds the images of some services (the Images use case; tests pass a stand-in). */
export type ImageResolver = (ctx: Context, services: string[], opts: { build: boolean; push: boolean; allowInsecureEngine?: boolean }) => Promise<ServiceImage[]>;

/** The real resolver: the Images use case the Context loads when a deploy needs it. */
export const ensureImagesLazily: ImageResolver = (ctx, services, opts) => ctx.ensureImages(services, opts);

/** Where pod specs live in each kind of object. */
export function podSpecPaths(o: { apiVersion: string; kind: string }): string[][] {
  if (o.kind === 'Pod' && o.apiVersion === 'v1') return [['spec']];
  if (o.kind === 'CronJob') return [['spec', 'jobTemplate', 'spec', 'template', 'spec']];
  if (['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'ReplicationController'].includes(o.kind)) return [['spec', 'template', 'spec']];
  return [];
}

export interface ImageUse {
  manifest: Manifest;
  /** Path of the container in the object, e.g. spec.template.spec.containers[0] */
  path: (string | number)[];
  container: string;
  image: string;
}

export function imageUses(manifests: Manifest[]): ImageUse[] {
  const out: ImageUse[] = [];
  for (const m of manifests) {
    for (const specPath of podSpecPaths(m.object)) {
      let spec: unknown = m.object;
      for (const p of specPath) spec = isRecord(spec) ? spec[p] : undefined;
      if (!isRecord(spec)) continue;
      for (const list of ['initContainers', 'containers', 'ephemeralContainers']) {
        const cs = spec[list];
        if (!Array.isArray(cs)) continue;
        cs.forEach((c, i) => {
          if (isRecord(c) && typeof c.image === 'string') out.push({ manifest: m, path: [...specPath, list, i], container: String(c.name ?? i), image: c.image });
        });
      }
    }
  }
  return out;
}

export interface ImageRefParts {
  registry?: string;
  repository: string;
  tag?: string;
  digest?: string;
}

/** Splits an image reference the way Docker does: [registry/]repository[:tag][@digest]. */
export function parseImageRef(ref: string): ImageRefParts {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const slash = rest.indexOf('/');
  let registry: string | undefined;
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  return { repository: rest, ...(registry ? { registry } : {}), ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** What an image reference in a manifest points at. */
export type ImageTarget = { kind: 'service'; service: string; warning?: string } | { kind: 'external' };

/**
 * A bare name must be a service's image; a reference into the site's registry
 * must name an image some service builds; anything else is left alone.
 * `catalogue` maps image names to the services building them.
 */
export function imageTarget(use: Pick<ImageUse, 'image' | 'manifest' | 'path'>, catalogue: Map<string, string>, registryHost: string): ImageTarget {
  const p = parseImageRef(use.image);
  const where = `${use.manifest.file}:${use.manifest.lineOf([...use.path, 'image'])}`;
  const known = [...new Set(catalogue.values())].sort();
  const list = known.length > 0 ? [`Services: ${known.join(', ')}`] : [];
  if (!p.registry && !p.tag && !p.digest) {
    const service = catalogue.get(p.repository);
    if (service) return { kind: 'service', service };
    throw new ConfigError(`${where}: image "${use.image}" names no service: there is no service folder building an image "${p.repository}"`, [
      ...list,
      'A bare image name stands for the image a service folder builds. For a public image write the full reference, e.g. docker.io/library/nginx:1.27.',
    ]);
  }
  if (p.registry === registryHost) {
    const service = catalogue.get(p.repository);
    if (!service) throw new ConfigError(`${where}: image "${use.image}" is in the site's registry, but no service builds "${p.repository}"`, list);
    if (!p.tag && !p.digest) return { kind: 'service', service, warning: `${where}: write "image: ${p.repository}" — enssib pins it to the digest it builds` };
  }
  return { kind: 'external' };
}

/** registry/name@sha256:… once the digest is known; registry/name:<content-tag> in a client dry run. */
export function pinnedReference(img: ServiceImage): string {
  if (!img.digest) return img.reference;
  const p = parseImageRef(img.reference);
  return `${p.registry ? `${p.registry}/` : ''}${p.repository}@${img.digest}`;
}

/** Sets a container's image in a copy of an object. */
export function setImage(obj: KObject, path: (string | number)[], image: string): void {
  let cur: unknown = obj;
  for (const p of path) cur = Array.isArray(cur) ? cur[p as number] : isRecord(cur) ? cur[p as string] : undefined;
  if (isRecord(cur)) cur.image = image;
}
