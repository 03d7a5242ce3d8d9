import type { KubeApi } from './api.js';
import { at, isRecord, num, records, str, type KObject } from './types.js';

/**
 * Why a rollout does not finish, in words a sysadmin acts on, from the pods of
 * the workload, their Events and the last log lines of crashing containers.
 */
export type FindingKind = 'image-pull' | 'crash-loop' | 'unschedulable' | 'missing-secret' | 'missing-configmap' | 'missing-claim' | 'mount-failed' | 'config-error' | 'not-ready' | 'replica-failure';

export interface Finding {
  kind: FindingKind;
  /** Pods showing it (the same problem on several replicas is one finding). */
  pods: string[];
  container?: string;
  message: string;
  details: string[];
}

export interface PodEvidence {
  pods: KObject[];
  events: KObject[];
  /** Last log lines by "pod/container" (the previous, crashed instance when there is one). */
  logs: Map<string, string[]>;
}

const PULL = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'RegistryUnavailable']);
const CRASH = new Set(['CrashLoopBackOff', 'RunContainerError']);

/** Events about one pod, newest first. */
function eventsFor(events: KObject[], pod: string): KObject[] {
  const t = (e: KObject) => str(e.lastTimestamp) ?? str(e.eventTime) ?? str(e.firstTimestamp) ?? str(e.metadata.creationTimestamp) ?? '';
  return events.filter((e) => at(e, 'involvedObject', 'name') === pod && (at(e, 'involvedObject', 'kind') ?? 'Pod') === 'Pod').sort((a, b) => t(b).localeCompare(t(a)));
}

function exitMeaning(code: number, reason: string | undefined): string {
  if (reason === 'OOMKilled') return 'killed for using more memory than its limit (OOMKilled)';
  if (code === 137) return 'killed (SIGKILL: out of memory, or it did not stop in time)';
  if (code === 143) return 'stopped by SIGTERM';
  if (code === 126) return 'the command is not executable';
  if (code === 127) return 'the command was not found in the image';
  if (code === 139) return 'crashed (segmentation fault)';
  return reason && reason !== 'Error' ? reason : 'error';
}

function missingObject(message: string): { kind: FindingKind; what: string; name: string } | null {
  const m = /(secret|configmap|persistentvolumeclaim)s? "([^"]+)" not found/i.exec(message);
  if (!m) return null;
  const kind = (m[1] as string).toLowerCase();
  const name = m[2] as string;
  if (kind === 'secret') return { kind: 'missing-secret', what: 'Secret', name };
  if (kind === 'configmap') return { kind: 'missing-configmap', what: 'ConfigMap', name };
  return { kind: 'missing-claim', what: 'PersistentVolumeClaim', name };
}

function missingFinding(pod: string, namespace: string, container: string | undefined, message: string, volume?: string): Finding | null {
  const m = missingObject(message);
  if (!m) return null;
  const hint =
    m.kind === 'missing-secret'
      ? `Create it: enssib secret create ${m.name} --from-file KEY=PATH …`
      : m.kind === 'missing-configmap'
        ? 'Add the ConfigMap to the service folder, or create it, then deploy again.'
        : 'Create the claim (and its volume: enssib volume create …), then deploy again.';
  return {
    kind: m.kind,
    pods: [pod],
    ...(container ? { container } : {}),
    message: `${m.what} "${m.name}" does not exist in namespace ${namespace}${volume ? ` (volume "${volume}")` : ''}: the pods cannot start without it`,
    details: [hint],
  };
}

/** The findings for a set of pods (pure: the caller fetched pods, events and logs). */
export function diagnosePods(ev: PodEvidence): Finding[] {
  const out: Finding[] = [];
  for (const pod of ev.pods) {
    const name = pod.metadata.name;
    const namespace = pod.metadata.namespace ?? 'default';
    const podEvents = eventsFor(ev.events, name);
    const conditions = records(at(pod, 'status', 'conditions'));
    const scheduled = conditions.find((c) => c.type === 'PodScheduled');
    if (scheduled && scheduled.status === 'False') {
      const event = podEvents.find((e) => e.reason === 'FailedScheduling');
      const message = str(event?.message) ?? str(scheduled.message) ?? 'no node can run it';
      out.push({ kind: 'unschedulable', pods: [name], message: `no node can run the pod: ${message}`, details: ['Free resources on the workers, lower the requests, or fix the nodeSelector/affinity/tolerations.'] });
      continue;
    }
    const statuses = [...records(at(pod, 'status', 'initContainerStatuses')), ...records(at(pod, 'status', 'containerStatuses'))];
    let found = false;
    for (const cs of statuses) {
      const container = str(cs.name) ?? '?';
      const waiting = at(cs, 'state', 'waiting');
      const reason = str(at(waiting, 'reason'));
      const wmsg = str(at(waiting, 'message')) ?? '';
      if (!reason) continue;
      if (PULL.has(reason)) {
        const image = str(cs.image) ?? '?';
        const failed = podEvents.find((e) => e.reason === 'Failed' && /^Failed to pull image/.test(str(e.message) ?? ''));
        out.push({
          kind: 'image-pull',
          pods: [name],
          container,
          message: `container "${container}" cannot pull its image ${image} (${reason})`,
          details: [
            ...(failed ? [str(failed.message) as string] : wmsg ? [wmsg] : []),
            'Check that the image is in the registry (enssib image list), and that every worker can reach the registry and trusts its CA.',
          ],
        });
        found = true;
      } else if (CRASH.has(reason)) {
        const term = at(cs, 'lastState', 'terminated');
        const code = num(at(term, 'exitCode'));
        const treason = str(at(term, 'reason'));
        const restarts = num(cs.restartCount) ?? 0;
        const lines = ev.logs.get(`${name}/${container}`) ?? [];
        out.push({
          kind: 'crash-loop',
          pods: [name],
          container,
          message: `container "${container}" keeps crashing (${reason}, restarted ${restarts} times)${code !== undefined ? `: last exit code ${code}, ${exitMeaning(code, treason)}` : ''}`,
          details: lines.length > 0 ? ['last log lines:', ...lines.map((l) => `  ${l}`)] : ['(it wrote nothing to its log)'],
        });
        found = true;
      } else if (reason === 'CreateContainerConfigError' || reason === 'CreateContainerError') {
        const f = missingFinding(name, namespace, container, wmsg);
        out.push(f ?? { kind: 'config-error', pods: [name], container, message: `container "${container}" cannot be created: ${wmsg || reason}`, details: [] });
        found = true;
      } else if (reason === 'ContainerCreating' || reason === 'PodInitializing') {
        const mount = podEvents.find((e) => e.reason === 'FailedMount' || e.reason === 'FailedAttachVolume');
        if (mount) {
          const msg = str(mount.message) ?? '';
          const vol = /for volume "([^"]+)"/.exec(msg)?.[1];
          const f = missingFinding(name, namespace, undefined, msg, vol);
          out.push(
            f ?? {
              kind: 'mount-failed',
              pods: [name],
              message: `volume ${vol ? `"${vol}" ` : ''}cannot be mounted: ${msg}`,
              details: ['For an iSCSI volume: check that it exists on both storage servers and that the node reaches both portals (enssib volume list).'],
            },
          );
          found = true;
          break;
        }
      }
    }
    if (found) continue;
    const ready = conditions.find((c) => c.type === 'Ready');
    if (str(at(pod, 'status', 'phase')) === 'Running' && ready && ready.status === 'False') {
      const probe = podEvents.find((e) => e.reason === 'Unhealthy');
      out.push({
        kind: 'not-ready',
        pods: [name],
        message: probe ? `the pod runs but is not ready: ${str(probe.message) ?? ''}` : 'the pod runs but is not ready',
        details: probe ? ['Check the readiness probe (port, path) against what the container really serves.'] : [],
      });
    }
  }
  return merge(out);
}

/** The same problem on several replicas: one finding listing the pods. */
function merge(findings: Finding[]): Finding[] {
  const byKey = new Map<string, Finding>();
  for (const f of findings) {
    const key = `${f.kind}\u0000${f.container ?? ''}\u0000${f.message}`;
    const seen = byKey.get(key);
    if (seen) seen.pods.push(...f.pods);
    else byKey.set(key, { ...f, pods: [...f.pods] });
  }
  return [...byKey.values()];
}

/** Conditions of the workload itself that explain a stuck rollout (e.g. a quota refusing new pods). */
export function workloadFindings(obj: KObject): Finding[] {
  return records(at(obj, 'status', 'conditions'))
    .filter((c) => c.type === 'ReplicaFailure' && c.status === 'True')
    .map((c) => ({ kind: 'replica-failure' as const, pods: [], message: `the controller cannot create pods: ${str(c.message) ?? str(c.reason) ?? ''}`, details: [] }));
}

/** "a=b,c in (d,e)" from a LabelSelector. */
export function selectorString(selector: unknown): string | undefined {
  if (!isRecord(selector)) return undefined;
  const terms: string[] = [];
  if (isRecord(selector.matchLabels)) for (const [k, v] of Object.entries(selector.matchLabels)) terms.push(`${k}=${String(v)}`);
  for (const e of records(selector.matchExpressions)) {
    const key = str(e.key);
    const values = Array.isArray(e.values) ? e.values.map(String) : [];
    if (!key) continue;
    if (e.operator === 'In') terms.push(`${key} in (${values.join(',')})`);
    else if (e.operator === 'NotIn') terms.push(`${key} notin (${values.join(',')})`);
    else if (e.operator === 'Exists') terms.push(key);
    else if (e.operator === 'DoesNotExist') terms.push(`!${key}`);
  }
  return terms.length > 0 ? terms.join(',') : undefined;
}

const LOG_LINES = 10;

/** Gathers the evidence for a workload (its pods, their events, crash logs) and diagnoses it. */
export async function diagnoseWorkload(api: KubeApi, workload: KObject): Promise<Finding[]> {
  const namespace = workload.metadata.namespace;
  const selector = selectorString(at(workload, 'spec', 'selector'));
  const own = workloadFindings(workload);
  if (!selector) return own;
  const [pods, events] = await Promise.all([
    api.list('v1', 'Pod', namespace, { labelSelector: selector }).then((r) => r.items),
    api.list('v1', 'Event', namespace, { fieldSelector: 'involvedObject.kind=Pod' }).then((r) => r.items),
  ]);
  const unready = pods.filter((p) => !records(at(p, 'status', 'conditions')).some((c) => c.type === 'Ready' && c.status === 'True'));
  const logs = new Map<string, string[]>();
  await Promise.all(
    unready.flatMap((p) =>
      [...records(at(p, 'status', 'initContainerStatuses')), ...records(at(p, 'status', 'containerStatuses'))]
        .filter((cs) => CRASH.has(str(at(cs, 'state', 'waiting', 'reason')) ?? ''))
        .map(async (cs) => {
          const container = str(cs.name) ?? '';
          const read = (previous: boolean) => api.podLog(p.metadata.namespace ?? namespace ?? 'default', p.metadata.name, container, { previous, tailLines: LOG_LINES });
          const text = await read(true).catch(() => read(false).catch(() => ''));
          logs.set(`${p.metadata.name}/${container}`, text.replace(/\n$/, '').split('\n').filter((l, i, a) => !(l === '' && a.length === 1)).slice(-LOG_LINES));
        }),
    ),
  );
  return [...own, ...diagnosePods({ pods: unready, events, logs })];
}

export function findingLines(findings: Finding[]): string[] {
  return findings.flatMap((f) => {
    const who = f.pods.length === 0 ? '' : f.pods.length === 1 ? `pod ${f.pods[0]}: ` : `${f.pods.length} pods (${f.pods.slice(0, 3).join(', ')}${f.pods.length > 3 ? ', …' : ''}): `;
    return [`${who}${f.message}`, ...f.details.map((d) => `  ${d}`)];
  });
}
