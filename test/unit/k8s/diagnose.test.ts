import { describe, expect, it } from 'vitest';
import { diagnosePods, findingLines, selectorString, workloadFindings, type PodEvidence } from '../../../src/k8s/diagnose.js';
import type { KObject } from '../../../src/k8s/types.js';

const pod = (name: string, status: Record<string, unknown>): KObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' }, spec: {}, status });
const event = (podName: string, reason: string, message: string, at = '2026-01-01T00:00:00Z'): KObject => ({
  apiVersion: 'v1',
  kind: 'Event',
  metadata: { name: `${podName}.x` },
  involvedObject: { kind: 'Pod', name: podName },
  reason,
  message,
  lastTimestamp: at,
});
const ev = (pods: KObject[], events: KObject[] = [], logs: [string, string[]][] = []): PodEvidence => ({ pods, events, logs: new Map(logs) });
const waiting = (name: string, reason: string, message = '', extra: Record<string, unknown> = {}) => ({ name, image: 'reg:5000/ldap@sha256:abc', restartCount: 0, state: { waiting: { reason, message } }, ...extra });

describe('diagnosePods', () => {
  it('ImagePullBackOff: which image, and the kubelet failure', () => {
    const f = diagnosePods(
      ev(
        [pod('ldap-1', { phase: 'Pending', containerStatuses: [waiting('ldap', 'ImagePullBackOff', 'Back-off pulling image "reg:5000/ldap@sha256:abc"')] })],
        [event('ldap-1', 'Failed', 'Failed to pull image "reg:5000/ldap@sha256:abc": x509: certificate signed by unknown authority'), event('ldap-1', 'Failed', 'Error: ImagePullBackOff')],
      ),
    );
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ kind: 'image-pull', container: 'ldap', message: 'container "ldap" cannot pull its image reg:5000/ldap@sha256:abc (ImagePullBackOff)' });
    expect(f[0]?.details[0]).toBe('Failed to pull image "reg:5000/ldap@sha256:abc": x509: certificate signed by unknown authority');
  });

  it('CrashLoopBackOff: exit code with its meaning, and the last log lines', () => {
    const f = diagnosePods(
      ev(
        [pod('mail-1', { phase: 'Running', containerStatuses: [waiting('mail', 'CrashLoopBackOff', 'back-off', { restartCount: 6, lastState: { terminated: { exitCode: 137, reason: 'OOMKilled' } } })] })],
        [],
        [['mail-1/mail', ['postfix starting', 'out of memory']]],
      ),
    );
    expect(f[0]?.message).toBe('container "mail" keeps crashing (CrashLoopBackOff, restarted 6 times): last exit code 137, killed for using more memory than its limit (OOMKilled)');
    expect(f[0]?.details).toEqual(['last log lines:', '  postfix starting', '  out of memory']);
  });

  it('a crash with an empty log says so', () => {
    const f = diagnosePods(ev([pod('a', { containerStatuses: [waiting('a', 'CrashLoopBackOff', '', { lastState: { terminated: { exitCode: 1, reason: 'Error' } } })] })]));
    expect(f[0]?.message).toContain('last exit code 1, error');
    expect(f[0]?.details).toEqual(['(it wrote nothing to its log)']);
  });

  it('unschedulable: the newest FailedScheduling event', () => {
    const f = diagnosePods(
      ev(
        [pod('www-1', { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: 'old message' }] })],
        [event('www-1', 'FailedScheduling', '0/3 nodes: old', '2026-01-01T00:00:00Z'), event('www-1', 'FailedScheduling', '0/3 nodes are available: 3 node(s) had untolerated taint.', '2026-01-01T00:01:00Z')],
      ),
    );
    expect(f[0]).toMatchObject({ kind: 'unschedulable', message: 'no node can run the pod: 0/3 nodes are available: 3 node(s) had untolerated taint.' });
  });

  it('a Secret missing for a volume (FailedMount) or for env (CreateContainerConfigError)', () => {
    const f = diagnosePods(
      ev(
        [
          pod('ldap-1', { phase: 'Pending', containerStatuses: [waiting('ldap', 'ContainerCreating')] }),
          pod('ldap-2', { phase: 'Pending', containerStatuses: [waiting('ldap', 'CreateContainerConfigError', 'secret "ldap-admin" not found')] }),
        ],
        [event('ldap-1', 'FailedMount', 'MountVolume.SetUp failed for volume "certificate" : secret "cert-ldap" not found')],
      ),
    );
    expect(f.map((x) => x.message)).toEqual([
      'Secret "cert-ldap" does not exist in namespace default (volume "certificate"): the pods cannot start without it',
      'Secret "ldap-admin" does not exist in namespace default: the pods cannot start without it',
    ]);
    expect(f[0]?.details[0]).toBe('Create it: enssib secret create cert-ldap --from-file KEY=PATH …');
  });

  it('an iSCSI volume that cannot be mounted', () => {
    const f = diagnosePods(
      ev([pod('ldap-1', { containerStatuses: [waiting('ldap', 'ContainerCreating')] })], [event('ldap-1', 'FailedMount', 'MountVolume.WaitForAttach failed for volume "ldap-iscsi" : failed to get any path for iscsi disk, last err seen:\niscsi: failed to sendtargets to portal 10.66.6.1:3260')]),
    );
    expect(f[0]?.kind).toBe('mount-failed');
    expect(f[0]?.message).toMatch(/^volume "ldap-iscsi" cannot be mounted: MountVolume\.WaitForAttach failed/);
  });

  it('the same problem on several replicas is one finding listing the pods', () => {
    const pods = ['a', 'b', 'c', 'd'].map((n) => pod(`www-${n}`, { containerStatuses: [waiting('www', 'ErrImagePull')] }));
    const f = diagnosePods(ev(pods));
    expect(f).toHaveLength(1);
    expect(f[0]?.pods).toEqual(['www-a', 'www-b', 'www-c', 'www-d']);
    expect(findingLines(f)[0]).toBe('4 pods (www-a, www-b, www-c, …): container "www" cannot pull its image reg:5000/ldap@sha256:abc (ErrImagePull)');
  });

  it('running but not ready: the readiness probe event', () => {
    const f = diagnosePods(ev([pod('w', { phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }], containerStatuses: [{ name: 'w', state: { running: {} } }] })], [event('w', 'Unhealthy', 'Readiness probe failed: dial tcp 10.100.1.5:80: connect: connection refused')]));
    expect(f[0]).toMatchObject({ kind: 'not-ready', message: 'the pod runs but is not ready: Readiness probe failed: dial tcp 10.100.1.5:80: connect: connection refused' });
  });

  it('a healthy pod gives nothing', () => {
    expect(diagnosePods(ev([pod('ok', { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }], containerStatuses: [{ name: 'x', state: { running: {} } }] })]))).toEqual([]);
  });
});

describe('workload findings and selectors', () => {
  it('ReplicaFailure (e.g. a quota) comes from the workload itself', () => {
    const f = workloadFindings({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, status: { conditions: [{ type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: 'pods "x-1" is forbidden: exceeded quota' }] } });
    expect(f[0]?.message).toBe('the controller cannot create pods: pods "x-1" is forbidden: exceeded quota');
  });

  it('selectorString turns matchLabels and matchExpressions into a label selector', () => {
    expect(
      selectorString({
        matchLabels: { app: 'www', tier: 'front' },
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['prod', 'preprod'] },
          { key: 'canary', operator: 'DoesNotExist' },
          { key: 'zone', operator: 'NotIn', values: ['b'] },
          { key: 'unit', operator: 'Exists' },
        ],
      }),
    ).toBe('app=www,tier=front,env in (prod,preprod),!canary,zone notin (b),unit');
    expect(selectorString(undefined)).toBeUndefined();
    expect(selectorString({})).toBeUndefined();
  });
});
