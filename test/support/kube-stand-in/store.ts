/**
 * STAND-IN: the object store behind the Kubernetes stand-in API server — one
 * resourceVersion counter for everything (as etcd's revision), a bounded
 * history of changes for WATCH to replay from a resourceVersion, and
 * subscribers for live watches and the scripted controller.
 */
import { randomUUID } from 'node:crypto';
import { clone, type Obj, type Owner, managedFieldsJson } from './fields.js';
import { groupVersion, type ResourceType } from './resources.js';

export type WatchType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoredObject {
  type: ResourceType;
  obj: Obj;
  owners: Owner[];
}

export interface Change {
  rv: number;
  type: WatchType;
  resource: ResourceType;
  namespace: string;
  name: string;
  /** The object as it was written (with kind, apiVersion, managedFields). */
  object: Obj;
  /** When the write happened (performance.now()), for latency measurements. */
  at: number;
}

export type Listener = (c: Change) => void;

const HISTORY = 5000;

export class Store {
  private rv = 1000;
  private readonly objects = new Map<string, StoredObject>();
  readonly history: Change[] = [];
  private readonly listeners = new Set<Listener>();

  static key(t: ResourceType, namespace: string, name: string): string {
    return `${t.group}|${t.name}|${t.namespaced ? namespace : ''}|${name}`;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  private compactedAt = 0;

  /** The oldest resourceVersion a watch can start from. */
  get oldestWatchable(): number {
    return Math.max(this.compactedAt, this.history.length === HISTORY ? (this.history[0] as Change).rv : 0);
  }

  /** Forgets the history, as etcd compaction does: a watch from an older resourceVersion gets 410 Expired. */
  compact(): void {
    this.history.length = 0;
    this.compactedAt = this.rv;
  }

  get(t: ResourceType, namespace: string, name: string): StoredObject | undefined {
    return this.objects.get(Store.key(t, namespace, name));
  }

  list(t: ResourceType, namespace: string | undefined): StoredObject[] {
    const prefix = `${t.group}|${t.name}|`;
    return [...this.objects.entries()]
      .filter(([k, v]) => k.startsWith(prefix) && (namespace === undefined || !t.namespaced || (v.obj.metadata as Obj).namespace === namespace))
      .map(([, v]) => v)
      .sort((a, b) => {
        const ma = a.obj.metadata as Obj;
        const mb = b.obj.metadata as Obj;
        return `${ma.namespace ?? ''}/${ma.name}`.localeCompare(`${mb.namespace ?? ''}/${mb.name}`);
      });
  }

  /** The object as the API returns it: kind, apiVersion and managedFields filled in. */
  render(s: StoredObject): Obj {
    const o = clone(s.obj);
    o.apiVersion = groupVersion(s.type);
    o.kind = s.type.kind;
    const md = o.metadata as Obj;
    if (s.owners.length > 0) md.managedFields = managedFieldsJson(s.owners);
    return o;
  }

  /** Writes an object (create or update): sets resourceVersion, uid and creationTimestamp, and tells the watchers. */
  put(t: ResourceType, obj: Obj, owners: Owner[]): StoredObject {
    const md = obj.metadata as Obj;
    const name = String(md.name);
    const namespace = t.namespaced ? String(md.namespace) : '';
    const key = Store.key(t, namespace, name);
    const existing = this.objects.get(key);
    this.rv += 1;
    md.resourceVersion = String(this.rv);
    if (!existing) {
      md.uid = md.uid ?? randomUUID();
      md.creationTimestamp = md.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    }
    delete md.managedFields;
    const stored: StoredObject = { type: t, obj, owners };
    this.objects.set(key, stored);
    this.emit({ rv: this.rv, type: existing ? 'MODIFIED' : 'ADDED', resource: t, namespace, name, object: this.render(stored), at: performance.now() });
    return stored;
  }

  delete(t: ResourceType, namespace: string, name: string): StoredObject | undefined {
    const key = Store.key(t, t.namespaced ? namespace : '', name);
    const existing = this.objects.get(key);
    if (!existing) return undefined;
    this.objects.delete(key);
    this.rv += 1;
    const rendered = this.render(existing);
    (rendered.metadata as Obj).resourceVersion = String(this.rv);
    this.emit({ rv: this.rv, type: 'DELETED', resource: t, namespace: t.namespaced ? namespace : '', name, object: rendered, at: performance.now() });
    return existing;
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private emit(c: Change): void {
    this.history.push(c);
    if (this.history.length > HISTORY) this.history.shift();
    for (const l of [...this.listeners]) l(c);
  }
}
