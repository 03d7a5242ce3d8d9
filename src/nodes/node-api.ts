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

/** Whether a Node object has the labels and taints (others may be there too). */
export function hasLabelsAndTaints(n: KObject, labels: Record<string, string>, taints: Taint[]): boolean {
  const have = (n.metadata.labels ?? {}) as Record<string, string>;
  const haveTaints = records(at(n, 'spec', 'taints'));
  return (
    Object.entries(labels).every(([k, v]) => have[k] === v) &&
    taints.every((t) => haveTaints.some((x) => x.key === t.key && (str(x.value) ?? '') === t.value && x.effect === t.effect))
  );
}

export function nodeApi(api: KubeApi, pollMs = 2000): NodeApi {
  return {
    async settled(name, labels, taints) {
      const n = await api.get(ref(name));
      return n !== null && ready(n) && hasLabelsAndTaints(n, labels, taints);
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
