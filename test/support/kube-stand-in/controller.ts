/**
 * STAND-IN for kube-controller-manager's deployment controller, the scheduler
 * and the kubelet, scripted per Deployment. It moves Deployment status through
 * the real fields and conditions (observedGeneration, replicas,
 * updatedReplicas, readyReplicas, availableReplicas; Progressing with reasons
 * ReplicaSetUpdated / NewReplicaSetAvailable / ProgressDeadlineExceeded, and
 * Available), creates the pods with their container states, and writes the
 * Events and container logs a real cluster would show:
 *
 *  - succeed after a delay (default, or scripted);
 *  - stuck: the controller never observes the new generation;
 *  - imagePull: ErrImagePull / ImagePullBackOff with the kubelet's events;
 *  - crashLoop: CrashLoopBackOff with the last exit code and logs;
 *  - unschedulable: Pending with a FailedScheduling event;
 *  - a Secret that a pod mounts (or reads in env) and that does not exist:
 *    FailedMount / CreateContainerConfigError, whatever the script says — and
 *    the pods start once the Secret is created, as the kubelet retries.
 *
 * Failing rollouts reach ProgressDeadlineExceeded after the Deployment's
 * spec.progressDeadlineSeconds, as the real controller does.
 */
import { createHash, randomBytes } from 'node:crypto';
import { clone, isObj, type Json, type Obj } from './fields.js';
import type { ResourceType } from './resources.js';
import type { Change, Store } from './store.js';

export type Behaviour =
  | { kind: 'succeed'; afterMs?: number }
  | { kind: 'stuck' }
  | { kind: 'imagePull'; reason?: 'ImagePullBackOff' | 'ErrImagePull'; message?: string }
  | { kind: 'crashLoop'; exitCode?: number; logs?: string[]; reason?: string }
  | { kind: 'unschedulable'; message?: string };

/** A behaviour, or a function of the Deployment (its pod template) choosing one. */
export type Script = Behaviour | ((deployment: Obj) => Behaviour);

interface Run {
  generation: number;
  hash: string;
  timers: NodeJS.Timeout[];
  blockedOnSecret?: string;
  deadlineAt?: number;
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const SCHEDULING = '0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.';

export class DeploymentController {
  private readonly scripts = new Map<string, Script>();
  private readonly runs = new Map<string, Run>();
  /** When (performance.now()) each Deployment's last completing status was written. */
  readonly completedAt = new Map<string, number>();
  private readonly unsubscribe: () => void;
  private readonly deployments: ResourceType;
  private readonly pods: ResourceType;
  private readonly events: ResourceType;
  private readonly secrets: ResourceType;

  constructor(
    private readonly store: Store,
    private readonly logs: Map<string, string[]>,
    types: ResourceType[],
    private defaultMs: number,
  ) {
    const t = (kind: string, group: string) => types.find((x) => x.kind === kind && x.group === group) as ResourceType;
    this.deployments = t('Deployment', 'apps');
    this.pods = t('Pod', '');
    this.events = t('Event', '');
    this.secrets = t('Secret', '');
    this.unsubscribe = store.subscribe((c) => this.onChange(c));
  }

  /** Scripts what happens to the Deployment namespace/name on its next rollouts. */
  script(namespace: string, name: string, s: Script): void {
    this.scripts.set(`${namespace}/${name}`, s);
  }

  /** The default delay of a successful rollout, for Deployments without a script. */
  setDefaultRolloutMs(ms: number): void {
    this.defaultMs = ms;
  }

  stop(): void {
    this.unsubscribe();
    for (const r of this.runs.values()) r.timers.forEach(clearTimeout);
    this.runs.clear();
  }

  private onChange(c: Change): void {
    if (c.resource === this.secrets && c.type === 'ADDED') {
      for (const [key, run] of this.runs) {
        if (run.blockedOnSecret === `${c.namespace}/${c.name}`) {
          const [ns, name] = key.split('/') as [string, string];
          const d = this.store.get(this.deployments, ns, name);
          if (d) this.start(key, d.obj, true);
        }
      }
      return;
    }
    if (c.resource !== this.deployments) return;
    const key = `${c.namespace}/${c.name}`;
    if (c.type === 'DELETED') {
      this.cancel(key);
      for (const p of this.podsOf(c.namespace, c.name)) this.store.delete(this.pods, c.namespace, String((p.metadata as Obj).name));
      return;
    }
    const gen = Number((c.object.metadata as Obj).generation ?? 1);
    const run = this.runs.get(key);
    if (run && run.generation === gen) return;
    const stored = this.store.get(this.deployments, c.namespace, c.name);
    if (stored) this.start(key, stored.obj, false);
  }

  private cancel(key: string): void {
    const r = this.runs.get(key);
    if (r) r.timers.forEach(clearTimeout);
    this.runs.delete(key);
  }

  private behaviour(key: string, d: Obj): Behaviour {
    const s = this.scripts.get(key);
    if (!s) return { kind: 'succeed' };
    return typeof s === 'function' ? s(d) : s;
  }

  private podsOf(ns: string, name: string): Obj[] {
    return this.store
      .list(this.pods, ns)
      .map((s) => s.obj)
      .filter((p) => ((p.metadata as Obj).ownerReferences as Obj[] | undefined)?.some((o) => String(o.name).startsWith(`${name}-`) && o.kind === 'ReplicaSet'));
  }

  private missingSecret(ns: string, template: Obj): { secret: string; volume?: string } | null {
    const spec = (template.spec ?? {}) as Obj;
    for (const v of (spec.volumes ?? []) as Obj[]) {
      const s = v.secret as Obj | undefined;
      if (s && s.optional !== true && !this.store.get(this.secrets, ns, String(s.secretName))) return { secret: String(s.secretName), volume: String(v.name) };
    }
    for (const c of [...((spec.initContainers ?? []) as Obj[]), ...((spec.containers ?? []) as Obj[])]) {
      for (const e of (c.env ?? []) as Obj[]) {
        const ref = (e.valueFrom as Obj | undefined)?.secretKeyRef as Obj | undefined;
        if (ref && ref.optional !== true && !this.store.get(this.secrets, ns, String(ref.name))) return { secret: String(ref.name) };
      }
      for (const e of (c.envFrom ?? []) as Obj[]) {
        const ref = e.secretRef as Obj | undefined;
        if (ref && ref.optional !== true && !this.store.get(this.secrets, ns, String(ref.name))) return { secret: String(ref.name) };
      }
    }
    return null;
  }

  private writeStatus(ns: string, name: string, gen: number, patch: (status: Obj, d: Obj) => void): Obj | null {
    const s = this.store.get(this.deployments, ns, name);
    if (!s || Number((s.obj.metadata as Obj).generation) !== gen) return null;
    const obj = clone(s.obj);
    const status = (isObj(obj.status) ? obj.status : (obj.status = {})) as Obj;
    patch(status, obj);
    this.store.put(this.deployments, obj, s.owners);
    return obj;
  }

  private setCondition(status: Obj, type: string, value: 'True' | 'False', reason: string, message: string): void {
    const conds = (Array.isArray(status.conditions) ? status.conditions : (status.conditions = [])) as Obj[];
    const t = now();
    const existing = conds.find((c) => c.type === type);
    if (existing) {
      if (existing.status !== value) existing.lastTransitionTime = t;
      existing.status = value;
      existing.reason = reason;
      existing.message = message;
      existing.lastUpdateTime = t;
    } else conds.push({ type, status: value, lastUpdateTime: t, lastTransitionTime: t, reason, message });
  }

  private event(ns: string, pod: Obj, type: 'Normal' | 'Warning', reason: string, message: string, component = 'kubelet'): void {
    const pmd = pod.metadata as Obj;
    const t = now();
    this.store.put(
      this.events,
      {
        metadata: { name: `${String(pmd.name)}.${randomBytes(8).toString('hex')}`, namespace: ns },
        involvedObject: { kind: 'Pod', namespace: ns, name: pmd.name as Json, uid: pmd.uid as Json, apiVersion: 'v1', fieldPath: 'spec.containers{main}' },
        reason,
        message,
        type,
        source: { component, ...(component === 'kubelet' ? { host: 'node01' } : {}) },
        firstTimestamp: t,
        lastTimestamp: t,
        count: 1,
        reportingComponent: component,
      },
      [],
    );
  }

  private start(key: string, d: Obj, retry: boolean): void {
    const [ns, name] = key.split('/') as [string, string];
    const gen = Number((d.metadata as Obj).generation ?? 1);
    const spec = d.spec as Obj;
    const template = spec.template as Obj;
    const hash = createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 10);
    const rsName = `${name}-${hash}`;
    const replicas = Number(spec.replicas ?? 1);
    const deadlineMs = Number(spec.progressDeadlineSeconds ?? 600) * 1000;
    const prev = this.runs.get(key);
    this.cancel(key);
    const run: Run = { generation: gen, hash, timers: [] };
    this.runs.set(key, run);
    const at = (ms: number, fn: () => void) => run.timers.push(setTimeout(fn, ms));

    let b = this.behaviour(key, d);
    if (b.kind === 'stuck') return;
    const missing = this.missingSecret(ns, template);
    run.blockedOnSecret = missing ? `${ns}/${missing.secret}` : undefined;
    run.deadlineAt = retry && prev?.deadlineAt ? prev.deadlineAt : performance.now() + deadlineMs;

    const all = this.podsOf(ns, name);
    const isNew = (p: Obj) => ((p.metadata as Obj).labels as Obj | undefined)?.['pod-template-hash'] === hash;
    const ready = (p: Obj) => ((p.status as Obj | undefined)?.conditions as Obj[] | undefined)?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
    const old = all.filter((p) => !isNew(p));
    const oldReady = old.filter(ready).length;
    const maxUnavailable = spec.strategy && (spec.strategy as Obj).type === 'Recreate' ? replicas : Math.floor(replicas * 0.25);
    const availability = (available: number) => (available >= replicas - maxUnavailable ? (['True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.'] as const) : (['False', 'MinimumReplicasUnavailable', 'Deployment does not have minimum availability.'] as const));

    // the controller observes the new generation, creates the new ReplicaSet's pods
    at(10, () => {
      let created = all.filter(isNew);
      for (let i = created.length; i < replicas; i++) {
        const pod = this.newPod(ns, name, rsName, hash, template);
        created.push(pod);
      }
      created = created.slice(0, Math.max(replicas, 0));
      this.writeStatus(ns, name, gen, (st) => {
        st.observedGeneration = gen;
        st.replicas = old.length + created.length;
        st.updatedReplicas = created.length;
        st.readyReplicas = oldReady + created.filter(ready).length;
        st.availableReplicas = oldReady + created.filter(ready).length;
        st.unavailableReplicas = Math.max(0, replicas - Number(st.availableReplicas));
        const [s, r, m] = availability(Number(st.availableReplicas));
        this.setCondition(st, 'Available', s, r, m);
        this.setCondition(st, 'Progressing', 'True', 'ReplicaSetUpdated', `ReplicaSet "${rsName}" is progressing.`);
      });
    });

    if (missing) b = { kind: 'succeed', afterMs: Number.POSITIVE_INFINITY };
    if (b.kind === 'succeed' && Number.isFinite(b.afterMs ?? this.defaultMs)) {
      const total = b.afterMs ?? this.defaultMs;
      at(Math.max(20, total), () => {
        for (const p of this.podsOf(ns, name)) {
          if (!isNew(p)) this.store.delete(this.pods, ns, String((p.metadata as Obj).name));
          else this.podRunning(ns, p, true);
        }
        const obj = this.writeStatus(ns, name, gen, (st) => {
          st.observedGeneration = gen;
          st.replicas = replicas;
          st.updatedReplicas = replicas;
          st.readyReplicas = replicas;
          st.availableReplicas = replicas;
          delete st.unavailableReplicas;
          this.setCondition(st, 'Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.');
          this.setCondition(st, 'Progressing', 'True', 'NewReplicaSetAvailable', `ReplicaSet "${rsName}" has successfully progressed.`);
        });
        if (obj) this.completedAt.set(key, performance.now());
      });
      return;
    }

    // a rollout that cannot finish: pods in trouble, then ProgressDeadlineExceeded
    at(50, () => {
      for (const p of this.podsOf(ns, name).filter(isNew)) {
        if (missing) this.podMissingSecret(ns, p, missing);
        else this.podFailing(ns, p, b);
      }
    });
    at(Math.max(60, (run.deadlineAt ?? 0) - performance.now()), () => {
      this.writeStatus(ns, name, gen, (st) => {
        this.setCondition(st, 'Progressing', 'False', 'ProgressDeadlineExceeded', `ReplicaSet "${rsName}" has timed out progressing.`);
      });
    });
  }

  private newPod(ns: string, name: string, rsName: string, hash: string, template: Obj): Obj {
    const tmd = (template.metadata ?? {}) as Obj;
    const podName = `${rsName}-${randomBytes(3).toString('hex').slice(0, 5)}`;
    const spec = clone((template.spec ?? {}) as Obj);
    const pod: Obj = {
      metadata: {
        name: podName,
        namespace: ns,
        labels: { ...((tmd.labels ?? {}) as Obj), 'pod-template-hash': hash },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rsName, controller: true, blockOwnerDeletion: true, uid: `rs-${hash}` }],
      },
      spec,
      status: {
        phase: 'Pending',
        conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: now() }],
        containerStatuses: ((spec.containers ?? []) as Obj[]).map((c) => ({
          name: c.name,
          image: c.image,
          imageID: '',
          ready: false,
          restartCount: 0,
          started: false,
          state: { waiting: { reason: 'ContainerCreating' } },
        })),
      },
    };
    this.store.put(this.pods, pod, []);
    const stored = this.store.get(this.pods, ns, podName);
    if (stored) this.event(ns, stored.obj, 'Normal', 'Scheduled', `Successfully assigned ${ns}/${podName} to node01`, 'default-scheduler');
    return stored?.obj ?? pod;
  }

  private updatePod(ns: string, pod: Obj, fn: (p: Obj) => void): Obj | null {
    const s = this.store.get(this.pods, ns, String((pod.metadata as Obj).name));
    if (!s) return null;
    const p = clone(s.obj);
    fn(p);
    this.store.put(this.pods, p, []);
    return p;
  }

  private podRunning(ns: string, pod: Obj, ready: boolean): void {
    this.updatePod(ns, pod, (p) => {
      const t = now();
      (p.spec as Obj).nodeName = 'node01';
      p.status = {
        phase: 'Running',
        hostIP: '10.66.6.11',
        podIP: `10.100.1.${10 + Math.floor(Math.random() * 200)}`,
        startTime: t,
        conditions: [
          { type: 'PodScheduled', status: 'True', lastTransitionTime: t },
          { type: 'Initialized', status: 'True', lastTransitionTime: t },
          { type: 'ContainersReady', status: ready ? 'True' : 'False', lastTransitionTime: t },
          { type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: t },
        ],
        containerStatuses: (((p.spec as Obj).containers ?? []) as Obj[]).map((c) => ({
          name: c.name,
          image: c.image,
          imageID: `${String(c.image).split('@')[0]}@sha256:${'0'.repeat(64)}`,
          ready,
          restartCount: 0,
          started: true,
          state: { running: { startedAt: t } },
        })),
      };
    });
  }

  private podMissingSecret(ns: string, pod: Obj, missing: { secret: string; volume?: string }): void {
    const p = this.updatePod(ns, pod, (x) => {
      (x.spec as Obj).nodeName = 'node01';
      const st = x.status as Obj;
      if (!missing.volume) {
        for (const cs of (st.containerStatuses ?? []) as Obj[]) cs.state = { waiting: { reason: 'CreateContainerConfigError', message: `secret "${missing.secret}" not found` } };
      }
    });
    if (!p) return;
    if (missing.volume) this.event(ns, p, 'Warning', 'FailedMount', `MountVolume.SetUp failed for volume "${missing.volume}" : secret "${missing.secret}" not found`);
    else this.event(ns, p, 'Warning', 'Failed', `Error: secret "${missing.secret}" not found`);
  }

  private podFailing(ns: string, pod: Obj, b: Behaviour): void {
    const pmd = pod.metadata as Obj;
    const podName = String(pmd.name);
    const containers = ((pod.spec as Obj).containers ?? []) as Obj[];
    const first = containers[0] ?? {};
    const image = String(first.image ?? '');
    const cname = String(first.name ?? 'main');
    if (b.kind === 'unschedulable') {
      const message = b.message ?? SCHEDULING;
      const p = this.updatePod(ns, pod, (x) => {
        x.status = { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: now() }] };
      });
      if (p) this.event(ns, p, 'Warning', 'FailedScheduling', message, 'default-scheduler');
      return;
    }
    if (b.kind === 'imagePull') {
      const reason = b.reason ?? 'ImagePullBackOff';
      const why =
        b.message ??
        `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": failed to resolve reference "${image}": ${image}: not found`;
      const p = this.updatePod(ns, pod, (x) => {
        (x.spec as Obj).nodeName = 'node01';
        const st = x.status as Obj;
        st.phase = 'Pending';
        st.containerStatuses = containers.map((c, i) => ({
          name: c.name,
          image: c.image,
          imageID: '',
          ready: false,
          restartCount: 0,
          started: false,
          state: i === 0 ? { waiting: { reason, message: reason === 'ImagePullBackOff' ? `Back-off pulling image "${image}"` : why } } : { waiting: { reason: 'PodInitializing' } },
        }));
      });
      if (!p) return;
      this.event(ns, p, 'Normal', 'Pulling', `Pulling image "${image}"`);
      this.event(ns, p, 'Warning', 'Failed', `Failed to pull image "${image}": ${why}`);
      this.event(ns, p, 'Warning', 'Failed', 'Error: ErrImagePull');
      if (reason === 'ImagePullBackOff') {
        this.event(ns, p, 'Normal', 'BackOff', `Back-off pulling image "${image}"`);
        this.event(ns, p, 'Warning', 'Failed', 'Error: ImagePullBackOff');
      }
      return;
    }
    if (b.kind === 'crashLoop') {
      const exitCode = b.exitCode ?? 1;
      const lines = b.logs ?? ['starting', 'fatal: configuration file missing'];
      this.logs.set(`${ns}/${podName}/${cname}/previous`, lines);
      this.logs.set(`${ns}/${podName}/${cname}`, lines.slice(0, 1));
      const p = this.updatePod(ns, pod, (x) => {
        (x.spec as Obj).nodeName = 'node01';
        const t = now();
        const st = x.status as Obj;
        st.phase = 'Running';
        st.conditions = [
          { type: 'PodScheduled', status: 'True', lastTransitionTime: t },
          { type: 'Ready', status: 'False', reason: 'ContainersNotReady', message: `containers with unready status: [${cname}]`, lastTransitionTime: t },
        ];
        st.containerStatuses = containers.map((c, i) => ({
          name: c.name,
          image: c.image,
          imageID: `${String(c.image).split('@')[0]}@sha256:${'1'.repeat(64)}`,
          ready: false,
          restartCount: i === 0 ? 4 : 0,
          started: false,
          state: i === 0 ? { waiting: { reason: 'CrashLoopBackOff', message: `back-off 1m20s restarting failed container=${String(c.name)} pod=${podName}_${ns}(${String(pmd.uid)})` } } : { running: { startedAt: t } },
          ...(i === 0 ? { lastState: { terminated: { exitCode, reason: b.reason ?? 'Error', startedAt: t, finishedAt: t, containerID: `containerd://${'2'.repeat(64)}` } } } : {}),
        }));
      });
      if (p) this.event(ns, p, 'Warning', 'BackOff', `Back-off restarting failed container ${cname} in pod ${podName}_${ns}(${String(pmd.uid)})`);
    }
  }
}
