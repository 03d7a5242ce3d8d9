import { at, num, records, str, type KObject } from './types.js';

/**
 * The rollout verdict of `kubectl rollout status`, rule for rule and word for
 * word (k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go):
 *  - Deployment: observedGeneration ≥ generation, then ProgressDeadlineExceeded
 *    fails, then updatedReplicas < replicas, old replicas pending termination,
 *    availableReplicas < updatedReplicas;
 *  - DaemonSet (RollingUpdate): updatedNumberScheduled, numberAvailable
 *    against desiredNumberScheduled;
 *  - StatefulSet (RollingUpdate): observedGeneration, readyReplicas, the
 *    partition, then updateRevision = currentRevision.
 */
export interface RolloutVerdict {
  /** The rollout is complete. */
  done: boolean;
  /** kubectl's line (without the trailing newline). */
  message: string;
  /** Set when kubectl would stop with an error (the rollout failed or cannot be followed). */
  error?: string;
}

const TIMED_OUT = 'ProgressDeadlineExceeded';

export function rolloutStatus(obj: KObject): RolloutVerdict {
  switch (obj.kind) {
    case 'Deployment':
      return deploymentStatus(obj);
    case 'DaemonSet':
      return daemonSetStatus(obj);
    case 'StatefulSet':
      return statefulSetStatus(obj);
    default:
      return { done: true, message: `${obj.kind} "${obj.metadata.name}" has no rollout`, error: `no status viewer has been implemented for ${obj.kind}` };
  }
}

const int = (v: unknown): number => num(v) ?? 0;

function deploymentStatus(d: KObject): RolloutVerdict {
  const name = d.metadata.name;
  const generation = int(d.metadata.generation);
  const observed = int(at(d, 'status', 'observedGeneration'));
  if (generation <= observed) {
    const progressing = records(at(d, 'status', 'conditions')).find((c) => c.type === 'Progressing');
    if (progressing && progressing.reason === TIMED_OUT) {
      const error = `deployment "${name}" exceeded its progress deadline`;
      return { done: false, message: error, error };
    }
    const specReplicas = num(at(d, 'spec', 'replicas'));
    const updated = int(at(d, 'status', 'updatedReplicas'));
    const replicas = int(at(d, 'status', 'replicas'));
    const available = int(at(d, 'status', 'availableReplicas'));
    if (specReplicas !== undefined && updated < specReplicas) {
      return { done: false, message: `Waiting for deployment "${name}" rollout to finish: ${updated} out of ${specReplicas} new replicas have been updated...` };
    }
    if (replicas > updated) {
      return { done: false, message: `Waiting for deployment "${name}" rollout to finish: ${replicas - updated} old replicas are pending termination...` };
    }
    if (available < updated) {
      return { done: false, message: `Waiting for deployment "${name}" rollout to finish: ${available} of ${updated} updated replicas are available...` };
    }
    return { done: true, message: `deployment "${name}" successfully rolled out` };
  }
  return { done: false, message: 'Waiting for deployment spec update to be observed...' };
}

function daemonSetStatus(ds: KObject): RolloutVerdict {
  const name = ds.metadata.name;
  const strategy = str(at(ds, 'spec', 'updateStrategy', 'type')) ?? 'RollingUpdate';
  if (strategy !== 'RollingUpdate') {
    const error = 'rollout status is only available for RollingUpdate strategy type';
    return { done: true, message: error, error };
  }
  if (int(ds.metadata.generation) <= int(at(ds, 'status', 'observedGeneration'))) {
    const desired = int(at(ds, 'status', 'desiredNumberScheduled'));
    const updated = int(at(ds, 'status', 'updatedNumberScheduled'));
    const available = int(at(ds, 'status', 'numberAvailable'));
    if (updated < desired) {
      return { done: false, message: `Waiting for daemon set "${name}" rollout to finish: ${updated} out of ${desired} new pods have been updated...` };
    }
    if (available < desired) {
      return { done: false, message: `Waiting for daemon set "${name}" rollout to finish: ${available} of ${desired} updated pods are available...` };
    }
    return { done: true, message: `daemon set "${name}" successfully rolled out` };
  }
  return { done: false, message: 'Waiting for daemon set spec update to be observed...' };
}

function statefulSetStatus(sts: KObject): RolloutVerdict {
  const strategy = str(at(sts, 'spec', 'updateStrategy', 'type')) ?? 'RollingUpdate';
  if (strategy !== 'RollingUpdate') {
    const error = 'rollout status is only available for RollingUpdate strategy type';
    return { done: true, message: error, error };
  }
  const observed = int(at(sts, 'status', 'observedGeneration'));
  if (observed === 0 || int(sts.metadata.generation) > observed) {
    return { done: false, message: 'Waiting for statefulset spec update to be observed...' };
  }
  const specReplicas = num(at(sts, 'spec', 'replicas'));
  const ready = int(at(sts, 'status', 'readyReplicas'));
  if (specReplicas !== undefined && ready < specReplicas) {
    return { done: false, message: `Waiting for ${specReplicas - ready} pods to be ready...` };
  }
  const updated = int(at(sts, 'status', 'updatedReplicas'));
  const rolling = at(sts, 'spec', 'updateStrategy', 'rollingUpdate');
  if (rolling !== undefined && rolling !== null) {
    const partition = num(at(rolling, 'partition'));
    if (specReplicas !== undefined && partition !== undefined) {
      if (updated < specReplicas - partition) {
        return { done: false, message: `Waiting for partitioned roll out to finish: ${updated} out of ${specReplicas - partition} new pods have been updated...` };
      }
    }
    return { done: true, message: `partitioned roll out complete: ${updated} new pods have been updated...` };
  }
  const updateRevision = str(at(sts, 'status', 'updateRevision')) ?? '';
  const currentRevision = str(at(sts, 'status', 'currentRevision')) ?? '';
  if (updateRevision !== currentRevision) {
    return { done: false, message: `waiting for statefulset rolling update to complete ${updated} pods at revision ${updateRevision}...` };
  }
  return { done: true, message: `statefulset rolling update complete ${int(at(sts, 'status', 'currentReplicas'))} pods at revision ${currentRevision}...` };
}

/** Numbers that count as progress: when none of them moves for the deadline, the rollout is stuck. */
export function progressMarker(obj: KObject): string {
  const s = at(obj, 'status');
  const keys = ['observedGeneration', 'replicas', 'updatedReplicas', 'readyReplicas', 'availableReplicas', 'updatedNumberScheduled', 'numberAvailable', 'currentReplicas', 'currentRevision'];
  return keys.map((k) => String(at(s, k) ?? '')).join('/');
}
