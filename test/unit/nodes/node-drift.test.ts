import { describe, expect, it } from 'vitest';
import type { KObject } from '../../../src/k8s/types.js';
import { nodeDrift } from '../../../src/nodes/node-api.js';

const node = (labels: Record<string, string>, taints: unknown[], ready: string | null): KObject => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name: 'node03', labels },
  spec: { taints },
  status: { conditions: ready === null ? [] : [{ type: 'Ready', status: ready, reason: ready === 'True' ? 'KubeletReady' : 'KubeletNotReady', message: ready === 'True' ? '' : 'container runtime network not ready' }] },
});
const taint = { key: 'dedicated', value: 'db', effect: 'NoSchedule' };

describe('node check: the Node in the cluster against the inventory', () => {
  it('as the bootstrap leaves it (others\' labels and taints are not drift): nothing', () => {
    expect(nodeDrift('node03', node({ disk: 'ssd', 'kubernetes.io/os': 'linux' }, [taint, { key: 'x', effect: 'NoExecute' }], 'True'), { disk: 'ssd' }, [taint])).toEqual([]);
  });
  it('names each difference: a label missing or other, a taint missing, not Ready with why', () => {
    expect(nodeDrift('node03', node({ disk: 'hdd' }, [{ ...taint, effect: 'NoExecute' }], 'False'), { disk: 'ssd', zone: 'a' }, [taint])).toEqual([
      'label disk=ssd is disk=hdd',
      'label zone=a missing',
      'taint dedicated=db:NoSchedule missing',
      'not Ready (False: KubeletNotReady: container runtime network not ready)',
    ]);
    expect(nodeDrift('node03', node({}, [], null), {}, [{ key: 'k', value: '', effect: 'NoSchedule' }])).toEqual(['taint k:NoSchedule missing', 'not Ready (no Ready condition yet)']);
  });
  it('no such Node: not joined', () => {
    expect(nodeDrift('node03', null, {}, [])).toEqual(['no Node node03 in the cluster (not joined)']);
  });
});
