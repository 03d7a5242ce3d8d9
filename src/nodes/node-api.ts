import { InterruptedError, OperationError } from '../errors.js';
import type { KubeApi } from '../k8s/api.js';
import { at, records, str, type KObject } from '../k8s/types.js';
import type { NodeApi, Taint } from './bootstrap.js';

/**
 * The join's Kubernetes side over the API server: labels and taints by
 * server-side apply (field manager enssib: what others set on the node is
 * left alone), then a poll until the node is Ready.
 */

const ref = (name: string) => ({ apiVersion: 'v1', kind: 'Node', name });

function ready(n: KObject | null): boolean {
  return records(at(n, 'status', 'conditions')).some((c) => c.type === 'Ready' && c.status === 'True');
}

/**
 * What differs between the Node in the cluster and what the bootstrap leaves
 * (`node check`): missing node, labels, taints, Ready. Empty: as wanted.
 * Labels and taints others added are not drift.
 */
export function nodeDrift(name: string, n: KObject | null, labels: Record<string, string>, taints: Taint[]): string[] {
  if (!n) return [`no Node ${name} in the cluster (not joined)`];
  const have = (n.metadata.labels ?? {}) as Record<string, string>;
  const haveTaints = records(at(n, 'spec', 'taints'));
  const out = [
    ...Object.entries(labels)
      .filter(([k, v]) => have[k] !== v)
      .map(([k, v]) => `label ${k}=${v} ${have[k] === undefined ? 'missing' : `is ${k}=${have[k]}`}`),
    ...taints.filter((t) => !haveTaints.some((x) => x.key === t.key && (str(x.value) ?? '') === t.value && x.effect === t.effect)).map((t) => `taint ${t.key}${t.value ? `=${t.value}` : ''}:${t.effect} missing`),
  ];
  if (!ready(n)) {
    const cond = records(at(n, 'status', 'conditions')).find((c) => c.type === 'Ready');
    out.push(`not Ready${cond ? ` (${[str(cond.status), str(cond.reason), str(cond.message)].filter(Boolean).join(': ')})` : ' (no Ready condition yet)'}`);
  }
  return out;
}

/** The drift of the Node as the API server has it now. */
export async function readNodeDrift(api: KubeApi, name: string, labels: Record<string, string>, taints: Taint[]): Promise<string[]> {
  return nodeDrift(name, await api.get(ref(name)), labels, taints);
}

export function nodeApi(api: KubeApi, pollMs = 2000): NodeApi {
  return {
    async settled(name, labels, taints) {
      return (await readNodeDrift(api, name, labels, taints)).length === 0;
    },
    async label(name, labels, taints) {
      if (Object.keys(labels).length === 0 && taints.length === 0) return;
      await api.apply(
        {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: { name, labels },
          ...(taints.length > 0 ? { spec: { taints: taints.map((t) => ({ key: t.key, ...(t.value ? { value: t.value } : {}), effect: t.effect })) } } : {}),
        },
        { force: false },
      );
    },
    async waitReady(name, timeoutS, signal) {
      const until = Date.now() + timeoutS * 1000;
      for (;;) {
        if (signal?.aborted) throw new InterruptedError(`interrupted while waiting for ${name} to be Ready`);
        const n = await api.get(ref(name));
        if (ready(n)) return;
        if (Date.now() >= until) {
          const cond = records(at(n, 'status', 'conditions')).find((c) => c.type === 'Ready');
          throw new OperationError(`${name} is not Ready after ${timeoutS} s${n ? `: ${[str(cond?.reason), str(cond?.message)].filter(Boolean).join(': ') || 'no Ready condition yet'}` : ': the API server has no such node'}`, [
            `kubectl describe node ${name}; journalctl -u kubelet on ${name}`,
            'Run the bootstrap again once it is fixed: what is done stays done.',
          ]);
        }
        await new Promise((r) => setTimeout(r, pollMs));
      }
    },
  };
}
