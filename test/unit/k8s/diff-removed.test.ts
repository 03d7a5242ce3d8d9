import { describe, expect, it } from 'vitest';
import { comparable, maskSecrets, objectDiff, redacted } from '../../../src/k8s/diff.js';
import { removedApi } from '../../../src/k8s/removed.js';
import type { KObject } from '../../../src/k8s/types.js';

const cm = (data: Record<string, string>, extra: Record<string, unknown> = {}): KObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'c', namespace: 'default', resourceVersion: '12', uid: 'u', generation: 1, creationTimestamp: 't', managedFields: [{ manager: 'enssib' }] },
  data,
  ...extra,
});

describe('objectDiff', () => {
  it('is empty when only server bookkeeping differs', () => {
    const a = cm({ a: '1' });
    const b = { ...cm({ a: '1' }), metadata: { ...cm({}).metadata, resourceVersion: '99', managedFields: [] }, status: { x: 1 } };
    expect(objectDiff(a, b, { live: 'live', result: 'folder' })).toBe('');
    expect(comparable(a).metadata).toEqual({ name: 'c', namespace: 'default' });
  });

  it('is a unified diff of the YAML, new objects against nothing', () => {
    const d = objectDiff(cm({ a: '1' }), cm({ a: '2' }), { live: 'live/ConfigMap c', result: 'services/x/c.yaml' });
    expect(d).toContain('--- live/ConfigMap c');
    expect(d).toContain('+++ services/x/c.yaml');
    expect(d).toMatch(/^-\s+a: "1"$/m);
    expect(d).toMatch(/^\+\s+a: "2"$/m);
    const created = objectDiff(null, cm({ a: '1' }), { live: 'live', result: 'new' });
    expect(created).toMatch(/^\+kind: ConfigMap$/m);
  });

  it('never shows Secret values: *** where equal, *** (before)/(after) where they differ', () => {
    const s = (data: Record<string, string>): KObject => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data });
    const [b, a] = maskSecrets(s({ same: 'c2VjcmV0', changed: 'b2xk', gone: 'eA==' }), s({ same: 'c2VjcmV0', changed: 'bmV3', added: 'eQ==' }));
    expect(b?.data).toEqual({ same: '***', changed: '*** (before)', gone: '*** (before)' });
    expect(a?.data).toEqual({ same: '***', changed: '*** (after)', added: '*** (after)' });
    const d = objectDiff(s({ k: 'c2VjcmV0' }), s({ k: 'b3RoZXI=' }), { live: 'l', result: 'r' });
    expect(d).not.toContain('c2VjcmV0');
    expect(d).not.toContain('b3RoZXI=');
    expect(d).toContain('*** (after)');
  });

  it('redacted shows Secret sizes only', () => {
    const r = redacted({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { k: Buffer.from('hello').toString('base64') }, stringData: { p: 'pw' } });
    expect(r.data).toEqual({ k: '(secret: 5 bytes, not shown)' });
    expect(r.stringData).toEqual({ p: '(secret: 2 bytes, not shown)' });
    const c = cm({ a: '1' });
    expect(redacted(c)).toBe(c);
  });
});

describe('removedApi', () => {
  it.each([
    ['extensions/v1beta1', 'Deployment', 'apps/v1', '1.16'],
    ['extensions/v1beta1', 'DaemonSet', 'apps/v1', '1.16'],
    ['extensions/v1beta1', 'NetworkPolicy', 'networking.k8s.io/v1', '1.16'],
    ['extensions/v1beta1', 'Ingress', 'networking.k8s.io/v1', '1.22'],
    ['apps/v1beta2', 'StatefulSet', 'apps/v1', '1.16'],
    ['batch/v1beta1', 'CronJob', 'batch/v1', '1.25'],
    ['policy/v1beta1', 'PodDisruptionBudget', 'policy/v1', '1.25'],
    ['autoscaling/v2beta2', 'HorizontalPodAutoscaler', 'autoscaling/v2', '1.26'],
    ['rbac.authorization.k8s.io/v1beta1', 'Role', 'rbac.authorization.k8s.io/v1', '1.22'],
    ['v1', 'policy', 'projectcalico.org/v3', 'Calico 3.0'],
  ])('%s %s → %s (removed in %s)', (apiVersion, kind, to, removedIn) => {
    expect(removedApi(apiVersion, kind)).toMatchObject({ apiVersion: to, removedIn });
  });

  it.each([
    ['apps/v1', 'Deployment'],
    ['v1', 'Service'],
    ['networking.k8s.io/v1', 'NetworkPolicy'],
    ['projectcalico.org/v3', 'NetworkPolicy'],
    ['crd.projectcalico.org/v1', 'NetworkPolicy'],
    ['batch/v1', 'CronJob'],
  ])('%s %s is served today', (apiVersion, kind) => {
    expect(removedApi(apiVersion, kind)).toBeNull();
  });
});
