import { createTwoFilesPatch } from 'diff';
import type * as Yaml from 'yaml';
import { cloneJson, deepEqual, isRecord, type KObject } from './types.js';
import { requireCjs } from '../require.js';

/** Metadata the server writes on every object; not part of what a service folder says. */
const SERVER_METADATA = ['managedFields', 'resourceVersion', 'generation', 'uid', 'creationTimestamp', 'selfLink'];

/** An object as compared by `service diff`: without server bookkeeping or status. */
export function comparable(o: KObject): KObject {
  const c = cloneJson(o);
  for (const k of SERVER_METADATA) delete c.metadata[k];
  delete c.status;
  return c;
}

/**
 * Secret values never leave enssib: both sides get "***" for equal values and
 * "*** (before)" / "*** (after)" where they differ, as `kubectl diff` does.
 */
export function maskSecrets(before: KObject | null, after: KObject | null): [KObject | null, KObject | null] {
  const isSecret = (o: KObject | null) => o !== null && o.kind === 'Secret' && o.apiVersion === 'v1';
  if (!isSecret(before) && !isSecret(after)) return [before, after];
  const b = before ? cloneJson(before) : null;
  const a = after ? cloneJson(after) : null;
  for (const field of ['data', 'stringData']) {
    const bv = b && isRecord(b[field]) ? (b[field] as Record<string, unknown>) : undefined;
    const av = a && isRecord(a[field]) ? (a[field] as Record<string, unknown>) : undefined;
    const keys = new Set([...Object.keys(bv ?? {}), ...Object.keys(av ?? {})]);
    for (const k of keys) {
      const same = bv?.[k] !== undefined && av?.[k] !== undefined && deepEqual(bv[k], av[k]);
      if (bv && k in bv) bv[k] = same ? '***' : '*** (before)';
      if (av && k in av) av[k] = same ? '***' : '*** (after)';
    }
  }
  return [b, a];
}

export function toYaml(o: KObject | null): string {
  return o === null ? '' : (requireCjs('yaml') as typeof Yaml).stringify(o, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** A unified diff between the live object and what applying would make of it ('' when equal). */
export function objectDiff(live: KObject | null, result: KObject, labels: { live: string; result: string }): string {
  const [b, a] = maskSecrets(live ? comparable(live) : null, comparable(result));
  const before = toYaml(b);
  const after = toYaml(a);
  if (before === after) return '';
  return createTwoFilesPatch(labels.live, labels.result, before, after, undefined, undefined, { context: 3 })
    .split('\n')
    .filter((l) => !/^={10,}$/.test(l) && !l.startsWith('Index: '))
    .join('\n')
    .replace(/\n$/, '');
}

/** A copy of an object for display (dry run): Secret values replaced by their sizes. */
export function redacted(o: KObject): KObject {
  if (o.kind !== 'Secret' || o.apiVersion !== 'v1') return o;
  const c = cloneJson(o);
  for (const field of ['data', 'stringData']) {
    const v = c[field];
    if (!isRecord(v)) continue;
    for (const k of Object.keys(v)) {
      const raw = String(v[k]);
      const bytes = field === 'data' ? Buffer.from(raw, 'base64').length : Buffer.byteLength(raw);
      v[k] = `(secret: ${bytes} bytes, not shown)`;
    }
  }
  return c;
}
