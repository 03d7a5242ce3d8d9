/**
 * The server-side apply field logic of the Kubernetes STAND-IN (test support):
 * the k8s tests rely on it behaving like the API server's for what enssib uses.
 */
import { describe, expect, it } from 'vitest';
import { fieldSet, recordUpdate, serverSideApply, showPath, toFieldsV1, type Obj } from '../../support/kube-stand-in/fields.js';

const T = '2026-01-01T00:00:00Z';
const dep = (containers: Obj[], extra: Obj = {}): Obj => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { template: { spec: { containers } }, ...extra } });

describe('stand-in server-side apply', () => {
  it('owns list-map items by key (containers by name, ports by containerPort), in FieldsV1', () => {
    const set = fieldSet(dep([{ name: 'a', image: 'i', ports: [{ containerPort: 80 }] }]), true);
    expect(toFieldsV1(set)).toEqual({
      'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"a"}': { '.': {}, 'f:name': {}, 'f:image': {}, 'f:ports': { 'k:{"containerPort":80}': { '.': {}, 'f:containerPort': {} } } } } } } },
    });
  });

  it('merges containers by name: another manager’s sidecar stays, the applier’s removed container goes', () => {
    const first = serverSideApply(undefined, dep([{ name: 'a', image: 'a:1' }, { name: 'b', image: 'b:1' }]), 'enssib', false, [], true, T);
    const withSidecar = recordUpdate(first.result, dep([{ name: 'a', image: 'a:1' }, { name: 'b', image: 'b:1' }, { name: 'mesh', image: 'm' }]), 'injector', first.owners, true, T);
    const live = dep([{ name: 'a', image: 'a:1' }, { name: 'b', image: 'b:1' }, { name: 'mesh', image: 'm' }]);
    const second = serverSideApply(live, dep([{ name: 'a', image: 'a:2' }]), 'enssib', false, withSidecar, true, T);
    expect(second.conflicts).toEqual([]);
    const names = (((second.result.spec as Obj).template as Obj).spec as Obj).containers as Obj[];
    expect(names).toEqual([
      { name: 'a', image: 'a:2' },
      { name: 'mesh', image: 'm' },
    ]);
  });

  it('409-style conflicts when another manager owns a field the applier changes; none for the same value; force takes it', () => {
    const base = serverSideApply(undefined, dep([{ name: 'a', image: 'a:1' }], { replicas: 1 }), 'enssib', false, [], true, T);
    const hpa = serverSideApply(base.result, { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { replicas: 3 } }, 'hpa', true, base.owners, true, T);
    const same = serverSideApply(hpa.result, dep([{ name: 'a', image: 'a:1' }], { replicas: 3 }), 'enssib', false, hpa.owners, true, T);
    expect(same.conflicts).toEqual([]);
    const clash = serverSideApply(hpa.result, dep([{ name: 'a', image: 'a:1' }], { replicas: 1 }), 'enssib', false, hpa.owners, true, T);
    expect(clash.conflicts.map((c) => `${c.manager} ${showPath(c.path)}`)).toEqual(['hpa .spec.replicas']);
    const forced = serverSideApply(hpa.result, dep([{ name: 'a', image: 'a:1' }], { replicas: 1 }), 'enssib', true, hpa.owners, true, T);
    expect((forced.result.spec as Obj).replicas).toBe(1);
    expect(forced.owners.find((o) => o.manager === 'hpa')).toBeUndefined();
  });

  it('custom resources have atomic lists', () => {
    const set = fieldSet({ apiVersion: 'crd.projectcalico.org/v1', kind: 'NetworkPolicy', metadata: { name: 'p' }, spec: { ingress: [{ action: 'Allow' }] } }, false);
    expect(toFieldsV1(set)).toEqual({ 'f:spec': { 'f:ingress': {} } });
  });
});
