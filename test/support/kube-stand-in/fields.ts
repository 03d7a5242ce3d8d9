/**
 * STAND-IN for the Kubernetes API server's server-side apply field management
 * (sigs.k8s.io/structured-merge-diff), reduced to what enssib relies on:
 * field sets per manager, list-maps merged by key (containers by name, ports by
 * containerPort/port, …), atomic lists elsewhere, conflicts when another
 * manager owns a field whose value the applier changes, and managedFields in
 * the FieldsV1 format. It is a test double, not an API server.
 */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json | undefined };
export type Obj = { [k: string]: Json | undefined };

/** One step of a field path: a map field, or a list-map item picked by its key. */
export type Seg = { f: string } | { k: Obj };
export type Path = Seg[];

/** List-maps of the built-in types (by field name) and the fields that key their items. */
const LIST_MAP_KEYS: Record<string, string[][]> = {
  containers: [['name']],
  initContainers: [['name']],
  ephemeralContainers: [['name']],
  volumes: [['name']],
  volumeMounts: [['mountPath']],
  volumeDevices: [['devicePath']],
  env: [['name']],
  imagePullSecrets: [['name']],
  hostAliases: [['ip']],
  // container ports are keyed by containerPort, Service ports by port (protocol joins the key when given)
  ports: [['containerPort', 'protocol'], ['containerPort'], ['port', 'protocol'], ['port']],
};

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function clone<T extends Json>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

export function deepEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => deepEqual(x, b[i]));
  }
  if (typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/** The key of a list-map item, or null when the list is atomic. */
export function itemKey(field: string, item: Json, builtin: boolean): Obj | null {
  if (!builtin || !isObj(item)) return null;
  const candidates = LIST_MAP_KEYS[field];
  if (!candidates) return null;
  for (const fields of candidates) {
    if (fields.every((f) => item[f] !== undefined && item[f] !== null)) {
      const key: Obj = {};
      for (const f of fields) key[f] = item[f] as Json;
      return key;
    }
  }
  return null;
}

function isListMap(field: string, list: Json[], builtin: boolean): boolean {
  return builtin && LIST_MAP_KEYS[field] !== undefined && list.length > 0 && list.every((i) => itemKey(field, i, builtin) !== null);
}

function keyMatches(item: Json, key: Obj): boolean {
  return isObj(item) && Object.entries(key).every(([k, v]) => deepEqual(item[k], v));
}

/** Fields never owned: identity, server-set metadata, status (a subresource). */
function skipped(path: Path): boolean {
  if (path.length === 1) {
    const s = path[0] as Seg;
    return 'f' in s && (s.f === 'apiVersion' || s.f === 'kind' || s.f === 'status');
  }
  if (path.length === 2) {
    const [a, b] = path as [Seg, Seg];
    return 'f' in a && a.f === 'metadata' && 'f' in b && ['name', 'namespace', 'resourceVersion', 'uid', 'generation', 'creationTimestamp', 'managedFields', 'selfLink', 'deletionTimestamp'].includes(b.f);
  }
  return false;
}

export const pathId = (p: Path): string => JSON.stringify(p);
export const parsePathId = (id: string): Path => JSON.parse(id) as Path;

/** `.spec.template.spec.containers[name="ldap"].image`, the way the API server names fields in conflicts. */
export function showPath(p: Path): string {
  return p
    .map((s) =>
      'f' in s
        ? `.${s.f}`
        : `[${Object.entries(s.k)
            .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
            .join(',')}]`,
    )
    .join('');
}

/**
 * The set of fields a configuration sets: every leaf (scalar, atomic list, empty
 * map) and every list-map item (its own marker path).
 */
export function fieldSet(config: Obj, builtin: boolean): Set<string> {
  const out = new Set<string>();
  const walk = (v: Json, path: Path, field: string) => {
    if (path.length > 0 && skipped(path)) return;
    if (isObj(v)) {
      const keys = Object.keys(v).filter((k) => v[k] !== null && v[k] !== undefined);
      if (keys.length === 0 && path.length > 0) out.add(pathId(path));
      for (const k of keys) walk(v[k] as Json, [...path, { f: k }], k);
      return;
    }
    if (Array.isArray(v) && isListMap(field, v, builtin)) {
      for (const item of v) {
        const itemPath: Path = [...path, { k: itemKey(field, item, builtin) as Obj }];
        out.add(pathId(itemPath));
        walk(item, itemPath, '');
      }
      return;
    }
    out.add(pathId(path));
  };
  walk(config, [], '');
  return out;
}

export function getAt(obj: Json, path: Path): Json | undefined {
  let cur: Json | undefined = obj;
  for (const s of path) {
    if (cur === undefined || cur === null) return undefined;
    if ('f' in s) {
      if (!isObj(cur)) return undefined;
      cur = cur[s.f];
    } else {
      if (!Array.isArray(cur)) return undefined;
      cur = cur.find((i) => keyMatches(i, s.k));
    }
  }
  return cur;
}

export function removeAt(obj: Json, path: Path): void {
  if (path.length === 0) return;
  const parent = getAt(obj, path.slice(0, -1));
  const last = path[path.length - 1] as Seg;
  if ('f' in last) {
    if (isObj(parent)) delete parent[last.f];
  } else if (Array.isArray(parent)) {
    const i = parent.findIndex((x) => keyMatches(x, last.k));
    if (i >= 0) parent.splice(i, 1);
  }
}

/** Merges a configuration into an object: maps field by field, list-maps item by key, anything else replaced. */
export function mergeInto(target: Obj, config: Obj, builtin: boolean): void {
  for (const [k, v] of Object.entries(config)) {
    if (v === null || v === undefined) continue;
    const cur = target[k];
    if (isObj(v) && isObj(cur)) {
      mergeInto(cur, v, builtin);
    } else if (Array.isArray(v) && Array.isArray(cur) && isListMap(k, v, builtin) && isListMap(k, cur, builtin)) {
      for (const item of v) {
        const key = itemKey(k, item, builtin) as Obj;
        const existing = cur.find((x) => keyMatches(x, key));
        if (existing && isObj(existing) && isObj(item)) mergeInto(existing, item, builtin);
        else cur.push(clone(item));
      }
    } else {
      target[k] = clone(v);
    }
  }
}

/** Leaf paths whose values differ between two objects (added, changed or removed). */
export function changedFields(before: Obj, after: Obj, builtin: boolean): { set: Set<string>; removed: Set<string> } {
  const a = fieldSet(before, builtin);
  const b = fieldSet(after, builtin);
  const set = new Set<string>();
  const removed = new Set<string>();
  for (const id of b) {
    const p = parsePathId(id);
    const last = p[p.length - 1];
    if (last && 'k' in last) {
      if (!a.has(id)) set.add(id);
    } else if (!deepEqual(getAt(before, p), getAt(after, p))) set.add(id);
  }
  for (const id of a) if (!b.has(id)) removed.add(id);
  return { set, removed };
}

/** FieldsV1, as the API server writes it in managedFields. */
export function toFieldsV1(ids: Iterable<string>): Obj {
  const root: Obj = {};
  for (const id of ids) {
    let node = root;
    const p = parsePathId(id);
    p.forEach((s, i) => {
      const name = 'f' in s ? `f:${s.f}` : `k:${JSON.stringify(s.k)}`;
      const next = (isObj(node[name]) ? node[name] : {}) as Obj;
      node[name] = next;
      node = next;
      if (i === p.length - 1 && 'k' in s) node['.'] = {};
    });
  }
  return root;
}

export interface Conflict {
  manager: string;
  apiVersion: string;
  path: Path;
}

/** One managedFields entry as the store keeps it: the field set, not yet serialised. */
export interface Owner {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  subresource?: string;
  fields: Set<string>;
}

export interface ApplyOutcome {
  result: Obj;
  owners: Owner[];
  conflicts: Conflict[];
}

/**
 * Server-side apply of `config` by `manager` onto `live` (undefined: create).
 * With conflicts and no force, the result is not usable: the caller answers 409.
 */
export function serverSideApply(live: Obj | undefined, config: Obj, manager: string, force: boolean, owners: Owner[], builtin: boolean, now: string): ApplyOutcome {
  const apiVersion = String(config.apiVersion ?? '');
  const newSet = fieldSet(config, builtin);
  const others = owners.filter((o) => !(o.manager === manager && o.operation === 'Apply'));
  const mine = owners.find((o) => o.manager === manager && o.operation === 'Apply');
  const conflicts: Conflict[] = [];
  if (live) {
    for (const id of newSet) {
      const p = parsePathId(id);
      const last = p[p.length - 1];
      if (last && 'k' in last) continue;
      const lv = getAt(live, p);
      if (lv === undefined || deepEqual(lv, getAt(config, p))) continue;
      for (const o of others) {
        if (o.manager !== manager && o.fields.has(id)) conflicts.push({ manager: o.manager, apiVersion: o.apiVersion, path: p });
      }
    }
  }
  if (conflicts.length > 0 && !force) return { result: live ?? config, owners, conflicts };
  const nextOthers = others
    .map((o) => {
      const fields = new Set(o.fields);
      for (const c of conflicts) if (c.manager === o.manager) fields.delete(pathId(c.path));
      return { ...o, fields };
    })
    .filter((o) => o.fields.size > 0);
  let result: Obj;
  if (live) {
    result = clone(live);
    const ownedByOthers = (id: string) => nextOthers.some((o) => [...o.fields].some((f) => f === id || f.startsWith(id.slice(0, -1))));
    const isItemKey = (p: Path) => {
      const last = p[p.length - 1];
      const parent = p[p.length - 2];
      return !!last && !!parent && 'f' in last && 'k' in parent && last.f in parent.k;
    };
    const gone = [...(mine?.fields ?? [])].filter((id) => !newSet.has(id) && !ownedByOthers(id) && !isItemKey(parsePathId(id)));
    // shallowest first: an item goes as a whole, then its fields are already gone
    gone.sort((x, y) => parsePathId(x).length - parsePathId(y).length);
    for (const id of gone) removeAt(result, parsePathId(id));
    mergeInto(result, config, builtin);
  } else {
    result = clone(config);
  }
  const entry: Owner = { manager, operation: 'Apply', apiVersion, time: now, fields: newSet };
  return { result, owners: [...nextOthers, entry], conflicts };
}

/** An update (merge patch, JSON patch): the manager takes the fields it changed; removed fields leave every owner. */
export function recordUpdate(before: Obj, after: Obj, manager: string, owners: Owner[], builtin: boolean, now: string): Owner[] {
  const { set, removed } = changedFields(before, after, builtin);
  const apiVersion = String(after.apiVersion ?? '');
  const next = owners
    .map((o) => {
      const fields = new Set([...o.fields].filter((f) => !set.has(f) && !removed.has(f)));
      return { ...o, fields };
    })
    .filter((o) => o.fields.size > 0 || (o.manager === manager && o.operation === 'Update'));
  if (set.size === 0) return next.filter((o) => o.fields.size > 0);
  const existing = next.find((o) => o.manager === manager && o.operation === 'Update');
  if (existing) {
    for (const f of set) existing.fields.add(f);
    existing.time = now;
    return next;
  }
  return [...next, { manager, operation: 'Update', apiVersion, time: now, fields: set }];
}

export function managedFieldsJson(owners: Owner[]): Json[] {
  return owners.map((o) => ({
    manager: o.manager,
    operation: o.operation,
    apiVersion: o.apiVersion,
    time: o.time,
    fieldsType: 'FieldsV1',
    fieldsV1: toFieldsV1(o.fields),
    ...(o.subresource ? { subresource: o.subresource } : {}),
  }));
}
