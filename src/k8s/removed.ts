/**
 * API versions that Kubernetes no longer serves, with what replaces them
 * (https://kubernetes.io/docs/reference/using-api/deprecation-guide/). The
 * site's old manifests use extensions/v1beta1 Deployments; an API server of
 * today answers 404 for them, so enssib refuses them first, saying what to write.
 */
export interface Replacement {
  apiVersion: string;
  removedIn: string;
  /** What else changes with the new version. */
  notes: string[];
}

const APPS = ['Deployment', 'DaemonSet', 'ReplicaSet', 'StatefulSet'];
const selectorNote = 'apps/v1 requires spec.selector (immutable), matching spec.template.metadata.labels.';

export function removedApi(apiVersion: string, kind: string): Replacement | null {
  const r = (to: string, removedIn: string, ...notes: string[]): Replacement => ({ apiVersion: to, removedIn, notes });
  switch (apiVersion) {
    case 'extensions/v1beta1':
      if (APPS.includes(kind)) return r('apps/v1', '1.16', selectorNote);
      if (kind === 'NetworkPolicy') return r('networking.k8s.io/v1', '1.16');
      if (kind === 'Ingress') return r('networking.k8s.io/v1', '1.22', 'backend becomes service.name/service.port; pathType is required.');
      if (kind === 'PodSecurityPolicy') return r('(none: use Pod Security admission)', '1.25');
      return r('(its current API group)', '1.22');
    case 'apps/v1beta1':
    case 'apps/v1beta2':
      return r('apps/v1', '1.16', selectorNote);
    case 'networking.k8s.io/v1beta1':
      return r('networking.k8s.io/v1', '1.22', ...(kind === 'Ingress' ? ['backend becomes service.name/service.port; pathType is required.'] : []));
    case 'batch/v1beta1':
      return r('batch/v1', '1.25');
    case 'batch/v2alpha1':
      return r('batch/v1', '1.21');
    case 'policy/v1beta1':
      return kind === 'PodSecurityPolicy' ? r('(none: use Pod Security admission)', '1.25') : r('policy/v1', '1.25', 'An empty selector now selects every pod of the namespace.');
    case 'autoscaling/v2beta1':
    case 'autoscaling/v2beta2':
      return r('autoscaling/v2', apiVersion === 'autoscaling/v2beta1' ? '1.25' : '1.26');
    case 'rbac.authorization.k8s.io/v1beta1':
    case 'rbac.authorization.k8s.io/v1alpha1':
      return r('rbac.authorization.k8s.io/v1', '1.22');
    case 'apiextensions.k8s.io/v1beta1':
      return r('apiextensions.k8s.io/v1', '1.22', 'spec.versions[].schema.openAPIV3Schema is required.');
    case 'admissionregistration.k8s.io/v1beta1':
      return r('admissionregistration.k8s.io/v1', '1.22');
    case 'scheduling.k8s.io/v1beta1':
    case 'scheduling.k8s.io/v1alpha1':
      return r('scheduling.k8s.io/v1', '1.17');
    case 'storage.k8s.io/v1beta1':
      if (['CSIDriver', 'CSINode', 'StorageClass', 'VolumeAttachment'].includes(kind)) return r('storage.k8s.io/v1', '1.22');
      return null;
    case 'certificates.k8s.io/v1beta1':
      return r('certificates.k8s.io/v1', '1.22');
    case 'coordination.k8s.io/v1beta1':
      return r('coordination.k8s.io/v1', '1.22');
    case 'discovery.k8s.io/v1beta1':
      return r('discovery.k8s.io/v1', '1.25');
    case 'events.k8s.io/v1beta1':
      return r('events.k8s.io/v1', '1.25');
    case 'node.k8s.io/v1beta1':
      return r('node.k8s.io/v1', '1.25');
    case 'flowcontrol.apiserver.k8s.io/v1beta1':
    case 'flowcontrol.apiserver.k8s.io/v1beta2':
    case 'flowcontrol.apiserver.k8s.io/v1beta3':
      return r('flowcontrol.apiserver.k8s.io/v1', '1.32');
    case 'v1':
      // calicoctl's Calico 2 format, as in the site's old write-up
      if (kind === 'policy' || kind === 'profile' || kind === 'hostEndpoint') {
        return r('projectcalico.org/v3', 'Calico 3.0', `kind ${kind} becomes ${kind === 'policy' ? 'NetworkPolicy (namespaced) or GlobalNetworkPolicy' : kind === 'profile' ? 'Profile' : 'HostEndpoint'}; actions are Allow/Deny, protocols TCP/UDP, and destination.net becomes destination.nets.`);
      }
      return null;
    default:
      return null;
  }
}
