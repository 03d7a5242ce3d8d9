/**
 * STAND-IN: the API groups and resources the Kubernetes stand-in serves, as
 * discovery documents (APIResourceList) describe them.
 */

export interface ResourceType {
  group: string;
  version: string;
  /** plural, e.g. "deployments" */
  name: string;
  kind: string;
  namespaced: boolean;
  singular: string;
  shortNames?: string[];
  /** Built-in type with list-map merge keys (custom resources have atomic lists). */
  builtin: boolean;
  /** Subresources, e.g. ["status"], ["log"]. */
  subresources?: string[];
}

const verbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

const core = (name: string, kind: string, namespaced = true, sub?: string[]): ResourceType => ({
  group: '',
  version: 'v1',
  name,
  kind,
  namespaced,
  singular: kind.toLowerCase(),
  builtin: true,
  ...(sub ? { subresources: sub } : {}),
});

export const BUILTIN: ResourceType[] = [
  core('namespaces', 'Namespace', false, ['status']),
  core('pods', 'Pod', true, ['log', 'status']),
  core('services', 'Service', true, ['status']),
  core('secrets', 'Secret'),
  core('configmaps', 'ConfigMap'),
  core('events', 'Event'),
  core('serviceaccounts', 'ServiceAccount'),
  core('persistentvolumeclaims', 'PersistentVolumeClaim', true, ['status']),
  core('persistentvolumes', 'PersistentVolume', false, ['status']),
  core('nodes', 'Node', false, ['status']),
  ...['deployments:Deployment', 'statefulsets:StatefulSet', 'daemonsets:DaemonSet', 'replicasets:ReplicaSet'].map((s) => {
    const [name, kind] = s.split(':') as [string, string];
    return { group: 'apps', version: 'v1', name, kind, namespaced: true, singular: kind.toLowerCase(), builtin: true, subresources: ['status', 'scale'] };
  }),
  { group: 'batch', version: 'v1', name: 'jobs', kind: 'Job', namespaced: true, singular: 'job', builtin: true, subresources: ['status'] },
  { group: 'batch', version: 'v1', name: 'cronjobs', kind: 'CronJob', namespaced: true, singular: 'cronjob', builtin: true, subresources: ['status'] },
  { group: 'networking.k8s.io', version: 'v1', name: 'networkpolicies', kind: 'NetworkPolicy', namespaced: true, singular: 'networkpolicy', builtin: true },
  { group: 'networking.k8s.io', version: 'v1', name: 'ingresses', kind: 'Ingress', namespaced: true, singular: 'ingress', builtin: true, subresources: ['status'] },
  { group: 'autoscaling', version: 'v2', name: 'horizontalpodautoscalers', kind: 'HorizontalPodAutoscaler', namespaced: true, singular: 'horizontalpodautoscaler', builtin: true, subresources: ['status'] },
];

/** Calico's custom resources: crd.projectcalico.org/v1 (the CRDs) and projectcalico.org/v3 (the Calico API server). */
export const CALICO: ResourceType[] = ['crd.projectcalico.org/v1', 'projectcalico.org/v3'].flatMap((gv) => {
  const [group, version] = gv.split('/') as [string, string];
  return [
    { group, version, name: 'networkpolicies', kind: 'NetworkPolicy', namespaced: true, singular: 'networkpolicy', builtin: false },
    { group, version, name: 'globalnetworkpolicies', kind: 'GlobalNetworkPolicy', namespaced: false, singular: 'globalnetworkpolicy', builtin: false },
    { group, version, name: 'globalnetworksets', kind: 'GlobalNetworkSet', namespaced: false, singular: 'globalnetworkset', builtin: false },
  ];
});

export function groupVersion(r: Pick<ResourceType, 'group' | 'version'>): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

export function resourceList(types: ResourceType[], gv: string): unknown {
  const inGv = types.filter((t) => groupVersion(t) === gv);
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: gv,
    resources: inGv.flatMap((t) => [
      {
        name: t.name,
        singularName: t.singular,
        namespaced: t.namespaced,
        kind: t.kind,
        verbs,
        ...(t.shortNames ? { shortNames: t.shortNames } : {}),
        storageVersionHash: Buffer.from(`${gv}/${t.name}`).toString('base64').slice(0, 11),
      },
      ...(t.subresources ?? []).map((s) => ({
        name: `${t.name}/${s}`,
        singularName: '',
        namespaced: t.namespaced,
        kind: s === 'log' ? 'Pod' : s === 'scale' ? 'Scale' : t.kind,
        verbs: s === 'log' ? ['get'] : ['get', 'patch', 'update'],
      })),
    ]),
  };
}

export function groupList(types: ResourceType[]): unknown {
  const groups = new Map<string, string[]>();
  for (const t of types) {
    if (!t.group) continue;
    const vs = groups.get(t.group) ?? [];
    if (!vs.includes(t.version)) vs.push(t.version);
    groups.set(t.group, vs);
  }
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [...groups].map(([name, vs]) => ({
      name,
      versions: vs.map((v) => ({ groupVersion: `${name}/${v}`, version: v })),
      preferredVersion: { groupVersion: `${name}/${vs[0]}`, version: vs[0] },
    })),
  };
}
