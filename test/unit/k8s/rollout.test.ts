import { describe, expect, it } from 'vitest';
import { progressMarker, rolloutStatus } from '../../../src/k8s/rollout.js';
import type { KObject } from '../../../src/k8s/types.js';

const dep = (generation: number, spec: Record<string, unknown>, status: Record<string, unknown>): KObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'ldap', generation },
  spec,
  status,
});

describe('rolloutStatus: kubectl rollout status, Deployment', () => {
  it.each([
    ['spec not observed yet', dep(3, { replicas: 2 }, { observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 2 }), false, 'Waiting for deployment spec update to be observed...'],
    ['new replicas being updated', dep(2, { replicas: 3 }, { observedGeneration: 2, updatedReplicas: 1, replicas: 3, availableReplicas: 2 }), false, 'Waiting for deployment "ldap" rollout to finish: 1 out of 3 new replicas have been updated...'],
    ['old replicas pending termination', dep(2, { replicas: 2 }, { observedGeneration: 2, updatedReplicas: 2, replicas: 3, availableReplicas: 2 }), false, 'Waiting for deployment "ldap" rollout to finish: 1 old replicas are pending termination...'],
    ['updated but not available', dep(2, { replicas: 2 }, { observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 1 }), false, 'Waiting for deployment "ldap" rollout to finish: 1 of 2 updated replicas are available...'],
    ['complete', dep(2, { replicas: 2 }, { observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 2 }), true, 'deployment "ldap" successfully rolled out'],
    ['observedGeneration ahead counts as observed', dep(2, { replicas: 1 }, { observedGeneration: 5, updatedReplicas: 1, replicas: 1, availableReplicas: 1 }), true, 'deployment "ldap" successfully rolled out'],
    ['zero replicas', dep(1, { replicas: 0 }, { observedGeneration: 1 }), true, 'deployment "ldap" successfully rolled out'],
    ['no spec.replicas: kubectl skips the updated check', dep(1, {}, { observedGeneration: 1, updatedReplicas: 0, replicas: 0, availableReplicas: 0 }), true, 'deployment "ldap" successfully rolled out'],
  ])('%s', (_name, obj, done, message) => {
    const v = rolloutStatus(obj);
    expect(v).toEqual({ done, message });
  });

  it('ProgressDeadlineExceeded is an error, checked before the counts', () => {
    const v = rolloutStatus(
      dep(
        2,
        { replicas: 2 },
        { observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 2, conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }] },
      ),
    );
    expect(v).toEqual({ done: false, message: 'deployment "ldap" exceeded its progress deadline', error: 'deployment "ldap" exceeded its progress deadline' });
  });

  it('ProgressDeadlineExceeded of an older generation is not judged until the new one is observed', () => {
    const v = rolloutStatus(dep(3, { replicas: 1 }, { observedGeneration: 2, conditions: [{ type: 'Progressing', reason: 'ProgressDeadlineExceeded' }] }));
    expect(v.error).toBeUndefined();
    expect(v.message).toBe('Waiting for deployment spec update to be observed...');
  });
});

describe('rolloutStatus: StatefulSet and DaemonSet', () => {
  const sts = (spec: Record<string, unknown>, status: Record<string, unknown>, generation = 1): KObject => ({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'sql', generation }, spec, status });
  const ds = (spec: Record<string, unknown>, status: Record<string, unknown>, generation = 1): KObject => ({ apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'calico-node', generation }, spec, status });

  it.each([
    ['not observed (observedGeneration 0)', sts({ replicas: 3 }, {}), false, 'Waiting for statefulset spec update to be observed...'],
    ['pods not ready', sts({ replicas: 3 }, { observedGeneration: 1, readyReplicas: 1 }), false, 'Waiting for 2 pods to be ready...'],
    ['partition not reached', sts({ replicas: 3, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 1 } } }, { observedGeneration: 1, readyReplicas: 3, updatedReplicas: 1 }), false, 'Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...'],
    ['partitioned complete', sts({ replicas: 3, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } } }, { observedGeneration: 1, readyReplicas: 3, updatedReplicas: 3 }), true, 'partitioned roll out complete: 3 new pods have been updated...'],
    ['revisions differ', sts({ replicas: 3, updateStrategy: { type: 'RollingUpdate' } }, { observedGeneration: 1, readyReplicas: 3, updatedReplicas: 2, updateRevision: 'sql-2', currentRevision: 'sql-1' }), false, 'waiting for statefulset rolling update to complete 2 pods at revision sql-2...'],
    ['revisions equal', sts({ replicas: 3, updateStrategy: { type: 'RollingUpdate' } }, { observedGeneration: 1, readyReplicas: 3, currentReplicas: 3, updateRevision: 'sql-2', currentRevision: 'sql-2' }), true, 'statefulset rolling update complete 3 pods at revision sql-2...'],
    ['daemon set not observed', ds({}, { observedGeneration: 1 }, 2), false, 'Waiting for daemon set spec update to be observed...'],
    ['daemon set updating', ds({}, { observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 1 }), false, 'Waiting for daemon set "calico-node" rollout to finish: 1 out of 3 new pods have been updated...'],
    ['daemon set not available', ds({}, { observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2 }), false, 'Waiting for daemon set "calico-node" rollout to finish: 2 of 3 updated pods are available...'],
    ['daemon set complete', ds({}, { observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3 }), true, 'daemon set "calico-node" successfully rolled out'],
  ])('%s', (_n, obj, done, message) => {
    expect(rolloutStatus(obj)).toEqual({ done, message });
  });

  it('OnDelete strategies cannot be followed (kubectl errors)', () => {
    expect(rolloutStatus(sts({ updateStrategy: { type: 'OnDelete' } }, {})).error).toBe('rollout status is only available for RollingUpdate strategy type');
    expect(rolloutStatus(ds({ updateStrategy: { type: 'OnDelete' } }, {})).error).toBe('rollout status is only available for RollingUpdate strategy type');
  });
});

describe('progressMarker', () => {
  it('moves when a count moves, not when conditions are rewritten', () => {
    const a = dep(1, { replicas: 2 }, { observedGeneration: 1, updatedReplicas: 1, conditions: [{ type: 'Available', lastUpdateTime: 't1' }] });
    const b = dep(1, { replicas: 2 }, { observedGeneration: 1, updatedReplicas: 1, conditions: [{ type: 'Available', lastUpdateTime: 't2' }] });
    const c = dep(1, { replicas: 2 }, { observedGeneration: 1, updatedReplicas: 2 });
    expect(progressMarker(a)).toBe(progressMarker(b));
    expect(progressMarker(a)).not.toBe(progressMarker(c));
  });
});
