import { ApplyConflictError, UnservedApiError, type KubeApi } from '../k8s/api.js';
import { at, cloneJson, isRecord, str, type KObject, type ObjectRef } from '../k8s/types.js';
import { targetRef, type PreparedObject, type PreparedService } from './prepare.js';

/**
 * What enssib applies, and how. Server-side apply never forces ownership: a
 * field another manager owns (an autoscaler's replicas, a hand edit) stops the
 * apply with the fields and their managers, unless the user said
 * --force-conflicts. Fields the site leaves to controllers are left out of the
 * applied object: `spec.replicas` of a workload an HorizontalPodAutoscaler scales.
 */

const SCALABLE = new Set(['Deployment', 'StatefulSet', 'ReplicaSet']);

/** "namespace/Kind/name" of the workloads HorizontalPodAutoscalers scale. */
export type Autoscaled = ReadonlySet<string>;

const key = (namespace: string, kind: string, name: string) => `${namespace}/${kind}/${name}`;

function scaleTargetKey(hpa: KObject, defaultNamespace: string): string | null {
  const kind = str(at(hpa, 'spec', 'scaleTargetRef', 'kind'));
  const name = str(at(hpa, 'spec', 'scaleTargetRef', 'name'));
  return kind && name ? key(hpa.metadata.namespace ?? defaultNamespace, kind, name) : null;
}

/**
 * The workloads under an autoscaler: those the services' own HorizontalPodAutoscalers
 * name, and those the cluster's name (every namespace; none when the cluster
 * does not serve autoscaling/v2). A failed read stops the deploy.
 */
export async function autoscaledWorkloads(api: KubeApi | undefined, services: readonly PreparedService[], namespace: string): Promise<Autoscaled> {
  const out = new Set<string>();
  for (const p of services) {
    for (const x of p.objects) {
      if (x.object.kind !== 'HorizontalPodAutoscaler') continue;
      const k = scaleTargetKey(x.object, namespace);
      if (k) out.add(k);
    }
  }
  if (!api) return out;
  try {
    const live = await api.list('autoscaling/v2', 'HorizontalPodAutoscaler', undefined);
    for (const hpa of live.items) {
      const k = scaleTargetKey(hpa, hpa.metadata.namespace ?? namespace);
      if (k) out.add(k);
    }
  } catch (e) {
    if (!(e instanceof UnservedApiError)) throw e;
  }
  return out;
}

export interface ApplyTarget {
  ref: ObjectRef;
  /** The object as it is sent: namespace set, fields left to controllers taken out. */
  body: KObject;
  /** Paths taken out, e.g. "spec.replicas (scaled by an HorizontalPodAutoscaler)". */
  leftOut: string[];
}

/** Where an object lands and what of it is applied. */
export async function applyTarget(api: KubeApi, x: PreparedObject, namespace: string, autoscaled: Autoscaled): Promise<ApplyTarget> {
  const info = await api.resource(x.object.apiVersion, x.object.kind);
  const ref = targetRef(x.object, namespace, info.namespaced);
  const body: KObject = ref.namespace ? { ...x.object, metadata: { ...x.object.metadata, namespace: ref.namespace } } : x.object;
  const leftOut: string[] = [];
  if (SCALABLE.has(ref.kind) && autoscaled.has(key(ref.namespace ?? namespace, ref.kind, ref.name)) && isRecord(body.spec) && 'replicas' in body.spec) {
    const copy = cloneJson(body);
    delete (copy.spec as Record<string, unknown>).replicas;
    leftOut.push('spec.replicas (scaled by an HorizontalPodAutoscaler)');
    return { ref, body: copy, leftOut };
  }
  return { ref, body, leftOut };
}

/** What to do about a conflict: the hint under the fields and their managers. */
export function conflictHint(e: ApplyConflictError): string {
  const fields = e.conflicts.map((c) => c.field).join(', ');
  return `Nothing was forced. To take ${fields} over, run again with --force-conflicts; to leave ${e.conflicts.length > 1 ? 'them' : 'it'} to ${[...new Set(e.conflicts.map((c) => `"${c.manager}"`))].join(', ')}, remove ${e.conflicts.length > 1 ? 'them' : 'it'} from the manifest.`;
}

/** Server-side apply without forcing ownership unless asked; a conflict becomes an error that names the fields, their managers and the way out. */
export async function applyOwned(api: KubeApi, body: KObject, o: { forceConflicts: boolean; dryRun?: boolean }): Promise<{ object: KObject; created: boolean }> {
  try {
    return await api.apply(body, { force: o.forceConflicts, ...(o.dryRun ? { dryRun: true } : {}) });
  } catch (e) {
    if (e instanceof ApplyConflictError) throw new ApplyConflictError(e.what, e.conflicts, e.reason, [conflictHint(e)]);
    throw e;
  }
}
