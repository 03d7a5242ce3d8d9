/**
 * STAND-IN Kubernetes API server for the tests (no real API server can be
 * installed on the test machines). A small node:http server that speaks the
 * real wire protocol for what enssib uses:
 *
 *  - discovery: /api, /apis, /api/v1, /apis/<group>/<version> (apps/v1,
 *    batch/v1, networking.k8s.io/v1, and Calico's crd.projectcalico.org/v1 and
 *    projectcalico.org/v3 custom resources);
 *  - GET, LIST (label and field selectors), WATCH (chunked JSON lines, from a
 *    resourceVersion, 410 Expired when it is too old), POST, DELETE;
 *  - PATCH: server-side apply (application/apply-patch+yaml, fieldManager,
 *    force, managedFields per manager, list-map merge by key, 409 Conflict,
 *    resourceVersion preconditions), JSON merge patch and JSON patch, all with
 *    dryRun=All;
 *  - pod logs (GET /api/v1/namespaces/<ns>/pods/<pod>/log);
 *  - bearer-token authentication (401 on a wrong token);
 *  - the defaulting and validation that enssib's behaviour depends on.
 *
 * A scripted deployment controller (controller.ts) moves Deployment status
 * through the real fields and conditions. This is a test double: it is named a
 * stand-in wherever the tests use it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { clone, deepEqual, isObj, recordUpdate, serverSideApply, showPath, type Json, type Obj, type Owner } from './fields.js';
import { BUILTIN, CALICO, groupList, groupVersion, resourceList, type ResourceType } from './resources.js';
import { parseFieldSelector, parseLabelSelector, SelectorError } from './selectors.js';
import { Store, type Change, type StoredObject } from './store.js';
import { DeploymentController } from './controller.js';

export interface StandInOptions {
  /** The bearer token the server accepts (default: a fixed test token). */
  token?: string;
  /** Serve Calico's custom resources (default true). */
  calico?: boolean;
  /** Default time a scripted rollout takes (ms). */
  rolloutMs?: number;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  watch: boolean;
  contentType?: string;
  at: number;
}

export interface KubeStandIn {
  readonly url: string;
  readonly port: number;
  readonly token: string;
  readonly store: Store;
  readonly controller: DeploymentController;
  readonly requests: RequestRecord[];
  /** Container logs the pods/log endpoint serves, by "namespace/pod/container[/previous]". */
  readonly logs: Map<string, string[]>;
  /** Writes a kubeconfig pointing at this server (token: the right one unless given). */
  writeKubeconfig(file: string, opts?: { token?: string; namespace?: string; context?: string }): string;
  /** Creates or replaces an object directly in the store (test setup), as manager "stand-in-setup". */
  seed(obj: Obj): Obj;
  /** An object as the API would return it, or undefined. */
  object(apiVersion: string, kind: string, namespace: string, name: string): Obj | undefined;
  /** Deletes an object directly in the store (test setup). */
  remove(apiVersion: string, kind: string, namespace: string, name: string): void;
  /** Ends every open watch, as an API server does when its watch timeout passes or it restarts. */
  dropWatches(): number;
  close(): Promise<void>;
}

export class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Obj,
  ) {
    super(message);
  }
}

export function statusBody(code: number, reason: string, message: string, details?: Obj): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

interface Route {
  type: ResourceType;
  namespace?: string;
  name?: string;
  sub?: string;
}

export async function startKubeStandIn(opts: StandInOptions = {}): Promise<KubeStandIn> {
  const token = opts.token ?? 'stand-in-token-8c1f';
  const types = [...BUILTIN, ...(opts.calico === false ? [] : CALICO)];
  const store = new Store();
  const logs = new Map<string, string[]>();
  const requests: RequestRecord[] = [];
  const controller = new DeploymentController(store, logs, types, opts.rolloutMs ?? 300);
  const openWatches = new Map<ServerResponse, string>();
  let clusterIp = 10;

  const typeOf = (kind: string, gv: string) => types.find((t) => t.kind === kind && groupVersion(t) === gv);
  const nsType = typeOf('Namespace', 'v1') as ResourceType;
  for (const ns of ['default', 'kube-system', 'kube-public']) store.put(nsType, { metadata: { name: ns }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } }, []);

  const qualified = (t: ResourceType) => (t.group ? `${t.name}.${t.group}` : t.name);
  const notFound = (t: ResourceType, name: string) =>
    new HttpError(404, 'NotFound', `${qualified(t)} "${name}" not found`, { name, ...(t.group ? { group: t.group } : {}), kind: t.name });

  function parseRoute(gv: string, rest: string[]): Route {
    let namespace: string | undefined;
    let r = rest;
    const inGv = types.filter((t) => groupVersion(t) === gv);
    if (r[0] === 'namespaces' && r.length >= 3 && inGv.some((t) => t.namespaced && t.name === r[2])) {
      namespace = r[1];
      r = r.slice(2);
    }
    const [resource, name, sub, ...extra] = r;
    const type = inGv.find((t) => t.name === resource);
    if (!type || extra.length > 0) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    if (sub !== undefined && !(type.subresources ?? []).includes(sub)) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    if (type.namespaced && name !== undefined && namespace === undefined) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    return { type, ...(namespace !== undefined ? { namespace } : {}), ...(name !== undefined ? { name } : {}), ...(sub !== undefined ? { sub } : {}) };
  }

  const labelsOf = (o: Obj): Record<string, string> => {
    const l = (o.metadata as Obj | undefined)?.labels;
    return isObj(l) ? (Object.fromEntries(Object.entries(l).map(([k, v]) => [k, String(v)])) as Record<string, string>) : {};
  };

  /** The label and field selectors of a LIST or WATCH; a malformed one is a 400, as on a real API server. */
  function selectors(q: URLSearchParams): { labelSel: (l: Record<string, string>) => boolean; fieldSel: (o: Obj) => boolean } {
    try {
      return { labelSel: parseLabelSelector(q.get('labelSelector')), fieldSel: parseFieldSelector(q.get('fieldSelector')) };
    } catch (e) {
      throw new HttpError(400, 'BadRequest', (e as SelectorError).message);
    }
  }

  function listItems(rt: Route, q: URLSearchParams): Obj[] {
    const { labelSel, fieldSel } = selectors(q);
    return store
      .list(rt.type, rt.namespace)
      .map((s) => store.render(s))
      .filter((o) => labelSel(labelsOf(o)) && fieldSel(o));
  }

  function defaults(t: ResourceType, o: Obj, live: Obj | undefined): void {
    const spec = (isObj(o.spec) ? o.spec : (o.spec = {})) as Obj;
    if (t.group === 'apps' && t.kind === 'Deployment') {
      spec.replicas ??= 1;
      spec.progressDeadlineSeconds ??= 600;
      spec.revisionHistoryLimit ??= 10;
      const st = (isObj(spec.strategy) ? spec.strategy : (spec.strategy = {})) as Obj;
      st.type ??= 'RollingUpdate';
      if (st.type === 'RollingUpdate') st.rollingUpdate ??= { maxSurge: '25%', maxUnavailable: '25%' };
      else delete st.rollingUpdate;
      o.status ??= live?.status ?? {};
    }
    if (t.group === 'apps' && (t.kind === 'StatefulSet' || t.kind === 'DaemonSet')) {
      spec.updateStrategy ??= { type: 'RollingUpdate', rollingUpdate: t.kind === 'StatefulSet' ? { partition: 0 } : { maxUnavailable: 1, maxSurge: 0 } };
      if (t.kind === 'StatefulSet') spec.replicas ??= 1;
      o.status ??= live?.status ?? {};
    }
    if (t.group === '' && t.kind === 'Service') {
      spec.type ??= 'ClusterIP';
      if (!spec.clusterIP) spec.clusterIP = (live?.spec as Obj | undefined)?.clusterIP ?? `10.101.0.${clusterIp++}`;
      spec.clusterIPs = [spec.clusterIP as Json];
      spec.sessionAffinity ??= 'None';
      if (Array.isArray(spec.ports)) for (const p of spec.ports) if (isObj(p)) {
        p.protocol ??= 'TCP';
        p.targetPort ??= p.port as Json;
      }
    }
    if (t.group === '' && t.kind === 'Secret') {
      o.type ??= 'Opaque';
      delete o.spec;
      if (isObj(o.stringData)) {
        const data = (isObj(o.data) ? o.data : (o.data = {})) as Obj;
        for (const [k, v] of Object.entries(o.stringData)) data[k] = Buffer.from(String(v)).toString('base64');
        delete o.stringData;
      }
    }
    if (t.group === '' && (t.kind === 'ConfigMap' || t.kind === 'Namespace' || t.kind === 'Event')) {
      if (isObj(o.spec) && Object.keys(o.spec).length === 0 && t.kind !== 'Namespace') delete o.spec;
    }
    if (!t.builtin && isObj(o.spec) && Object.keys(o.spec).length === 0 && !('spec' in (live ?? {}))) {
      /* custom resources keep what they were given */
    }
  }

  function validate(t: ResourceType, o: Obj, live: Obj | undefined): void {
    const md = o.metadata as Obj;
    const name = String(md.name ?? '');
    const invalid = (field: string, value: Json | undefined, why: string) =>
      new HttpError(422, 'Invalid', `${t.kind}${t.group ? `.${t.group}` : ''} "${name}" is invalid: ${field}: ${why}`, {
        name,
        ...(t.group ? { group: t.group } : {}),
        kind: t.kind,
        causes: [{ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${why}`, field }],
      });
    if (!DNS_SUBDOMAIN.test(name) || name.length > 253) throw invalid('metadata.name', name, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'");
    if (t.group === 'apps' && ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet'].includes(t.kind)) {
      const spec = o.spec as Obj;
      const sel = spec.selector;
      if (!isObj(sel)) throw invalid('spec.selector', null, 'Required value');
      const tmplLabels = labelsOf((spec.template ?? {}) as Obj);
      const ml = isObj(sel.matchLabels) ? sel.matchLabels : {};
      if (Object.keys(ml).length === 0 && !Array.isArray(sel.matchExpressions)) throw invalid('spec.selector', sel, 'empty selector is invalid for deployment');
      if (!Object.entries(ml).every(([k, v]) => tmplLabels[k] === String(v))) {
        throw invalid('spec.template.metadata.labels', tmplLabels, '`selector` does not match template `labels`');
      }
      if (live && !deepEqual((live.spec as Obj).selector, sel)) throw invalid('spec.selector', sel, 'field is immutable');
      const containers = ((spec.template as Obj | undefined)?.spec as Obj | undefined)?.containers;
      if (!Array.isArray(containers) || containers.length === 0) throw invalid('spec.template.spec.containers', null, 'Required value');
      for (const [i, c] of containers.entries()) {
        if (!isObj(c) || !c.image) throw invalid(`spec.template.spec.containers[${i}].image`, null, 'Required value');
      }
    }
  }

  const withoutMeta = (o: Obj) => {
    const c = clone(o);
    delete c.metadata;
    delete c.status;
    return c;
  };

  /** Finishes a write: defaults, validation, generation; stores it unless dry-run. Returns what the API answers. */
  function commit(t: ResourceType, stored: StoredObject | undefined, next: Obj, owners: Owner[], dryRun: boolean): Obj {
    const live = stored?.obj;
    defaults(t, next, live);
    validate(t, next, live);
    const md = next.metadata as Obj;
    if (live) {
      const lmd = live.metadata as Obj;
      md.uid = lmd.uid as Json;
      md.creationTimestamp = lmd.creationTimestamp as Json;
      md.resourceVersion = lmd.resourceVersion as Json;
      const gen = Number(lmd.generation ?? 1);
      md.generation = deepEqual(withoutMeta(live), withoutMeta(next)) ? gen : gen + 1;
      // nothing changed: no write, same resourceVersion (the API server skips no-op updates)
      if (stored && deepEqual(live, next) && sameOwners(stored.owners, owners)) return store.render(stored);
    } else {
      md.generation = 1;
    }
    if (dryRun) {
      const o = store.render({ type: t, obj: clone(next), owners });
      if (!live) delete (o.metadata as Obj).resourceVersion;
      return o;
    }
    return store.render(store.put(t, next, owners));
  }

  function sameOwners(a: Owner[], b: Owner[]): boolean {
    if (a.length !== b.length) return false;
    return a.every((x) => {
      const y = b.find((o) => o.manager === x.manager && o.operation === x.operation);
      return !!y && x.fields.size === y.fields.size && [...x.fields].every((f) => y.fields.has(f));
    });
  }

  function ensureNamespace(t: ResourceType, ns: string | undefined): void {
    if (!t.namespaced) return;
    if (!ns || !store.get(nsType, '', ns)) throw new HttpError(404, 'NotFound', `namespaces "${ns ?? ''}" not found`, { name: ns ?? '', kind: 'namespaces' });
  }

  function apply(rt: Route, body: string, q: URLSearchParams): { code: number; body: Obj } {
    const manager = q.get('fieldManager');
    if (!manager) throw new HttpError(422, 'Invalid', 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
    let config: unknown;
    try {
      config = parseYaml(body);
    } catch (e) {
      throw new HttpError(400, 'BadRequest', `error decoding YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    if (!isObj(config)) throw new HttpError(400, 'BadRequest', 'the body of an apply patch must be an object');
    const gv = groupVersion(rt.type);
    if (config.apiVersion !== gv || config.kind !== rt.type.kind) {
      throw new HttpError(400, 'BadRequest', `the API version in the data (${String(config.apiVersion)}) does not match the expected API version (${gv})`);
    }
    const md = (isObj(config.metadata) ? config.metadata : (config.metadata = {})) as Obj;
    if (md.name !== rt.name) throw new HttpError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
    if (rt.type.namespaced) {
      if (md.namespace !== undefined && md.namespace !== rt.namespace) throw new HttpError(400, 'BadRequest', 'the namespace of the object does not match the namespace on the request');
      md.namespace = rt.namespace as string;
    }
    ensureNamespace(rt.type, rt.namespace);
    const stored = store.get(rt.type, rt.namespace ?? '', rt.name as string);
    const live = stored?.obj;
    if (md.resourceVersion !== undefined && md.resourceVersion !== null) {
      const want = String(md.resourceVersion);
      if (!live || (live.metadata as Obj).resourceVersion !== want) {
        throw new HttpError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(rt.type)} "${rt.name}": the object has been modified; please apply your changes to the latest version and try again`, {
          name: rt.name as string,
          ...(rt.type.group ? { group: rt.type.group } : {}),
          kind: rt.type.name,
        });
      }
      delete md.resourceVersion;
    }
    const force = q.get('force') === 'true';
    const out = serverSideApply(live, config, manager, force, stored?.owners ?? [], rt.type.builtin, now());
    if (out.conflicts.length > 0 && !force) {
      const causes = out.conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with "${c.manager}" using ${c.apiVersion}`, field: showPath(c.path) }));
      const lines = out.conflicts.map((c) => `conflict with "${c.manager}" using ${c.apiVersion}: ${showPath(c.path)}`);
      const message = out.conflicts.length === 1 ? `Apply failed with 1 conflict: ${lines[0]}` : `Apply failed with ${out.conflicts.length} conflicts: ${lines.join('\n')}`;
      throw new HttpError(409, 'Conflict', message, { causes });
    }
    const result = out.result;
    delete result.status;
    if (live && live.status !== undefined) result.status = clone(live.status);
    const dryRun = q.get('dryRun') === 'All';
    const answer = commit(rt.type, stored, result, out.owners, dryRun);
    return { code: live ? 200 : 201, body: answer };
  }

  function mergePatch(target: Json | undefined, patch: Json): Json {
    if (!isObj(patch)) return clone(patch);
    const out: Obj = isObj(target) ? clone(target) : {};
    for (const [k, v] of Object.entries(patch)) {
      if (v === null || v === undefined) delete out[k];
      else out[k] = mergePatch(out[k], v);
    }
    return out;
  }

  function jsonPatch(target: Obj, ops: Json): Obj {
    if (!Array.isArray(ops)) throw new HttpError(400, 'BadRequest', 'a JSON patch is a list of operations');
    const doc = clone(target);
    for (const op of ops) {
      if (!isObj(op) || typeof op.path !== 'string') throw new HttpError(400, 'BadRequest', 'invalid JSON patch operation');
      const segs = op.path.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
      const last = segs.pop() as string;
      let parent: Json = doc;
      for (const s of segs) {
        parent = Array.isArray(parent) ? (parent[Number(s)] as Json) : isObj(parent) ? (parent[s] as Json) : null;
        if (parent === undefined || parent === null) throw new HttpError(422, 'Invalid', `the server rejected our request due to an error in our request: path ${op.path} does not exist`);
      }
      const setIn = (v: Json) => {
        if (Array.isArray(parent)) {
          if (last === '-') parent.push(v);
          else if (op.op === 'add') parent.splice(Number(last), 0, v);
          else parent[Number(last)] = v;
        } else if (isObj(parent)) parent[last] = v;
      };
      switch (op.op) {
        case 'add':
        case 'replace':
          if (op.op === 'replace' && isObj(parent) && !(last in parent)) throw new HttpError(422, 'Invalid', `replace operation does not apply: doc is missing key: ${op.path}`);
          setIn(clone(op.value as Json));
          break;
        case 'remove':
          if (Array.isArray(parent)) parent.splice(Number(last), 1);
          else if (isObj(parent)) delete parent[last];
          break;
        case 'test': {
          const cur = Array.isArray(parent) ? parent[Number(last)] : isObj(parent) ? parent[last] : undefined;
          if (!deepEqual(cur, op.value as Json)) throw new HttpError(422, 'Invalid', `the server rejected our request due to an error in our request: testing value ${op.path} failed`);
          break;
        }
        default:
          throw new HttpError(400, 'BadRequest', `unsupported JSON patch operation ${String(op.op)}`);
      }
    }
    return doc;
  }

  function patch(rt: Route, contentType: string, body: string, q: URLSearchParams): { code: number; body: Obj } {
    if (contentType === 'application/apply-patch+yaml') return apply(rt, body, q);
    const stored = store.get(rt.type, rt.namespace ?? '', rt.name as string);
    if (!stored) throw notFound(rt.type, rt.name as string);
    let parsed: Json;
    try {
      parsed = JSON.parse(body) as Json;
    } catch (e) {
      throw new HttpError(400, 'BadRequest', `error decoding patch: ${(e as Error).message}`);
    }
    let next: Obj;
    if (contentType === 'application/json-patch+json') next = jsonPatch(stored.obj, parsed);
    else if (contentType === 'application/merge-patch+json' || contentType === 'application/strategic-merge-patch+json') next = mergePatch(stored.obj, parsed) as Obj;
    else throw new HttpError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
    const md = next.metadata as Obj;
    md.name = rt.name as string;
    if (rt.type.namespaced) md.namespace = rt.namespace as string;
    const manager = q.get('fieldManager') ?? 'unknown';
    const owners = recordUpdate(stored.obj, next, manager, stored.owners, rt.type.builtin, now());
    return { code: 200, body: commit(rt.type, stored, next, owners, q.get('dryRun') === 'All') };
  }

  function create(rt: Route, body: string, q: URLSearchParams): { code: number; body: Obj } {
    let o: Json;
    try {
      o = JSON.parse(body) as Json;
    } catch (e) {
      throw new HttpError(400, 'BadRequest', `error decoding body: ${(e as Error).message}`);
    }
    if (!isObj(o)) throw new HttpError(400, 'BadRequest', 'the body must be an object');
    const md = (isObj(o.metadata) ? o.metadata : (o.metadata = {})) as Obj;
    if (rt.type.namespaced) md.namespace = rt.namespace as string;
    ensureNamespace(rt.type, rt.namespace);
    const name = String(md.name ?? '');
    if (store.get(rt.type, rt.namespace ?? '', name)) {
      throw new HttpError(409, 'AlreadyExists', `${qualified(rt.type)} "${name}" already exists`, { name, kind: rt.type.name });
    }
    const owners = recordUpdate({}, o, q.get('fieldManager') ?? 'unknown', [], rt.type.builtin, now());
    return { code: 201, body: commit(rt.type, undefined, o, owners, q.get('dryRun') === 'All') };
  }

  function podLog(rt: Route, q: URLSearchParams): string {
    const pod = store.get(rt.type, rt.namespace ?? '', rt.name as string);
    if (!pod) throw notFound(rt.type, rt.name as string);
    const containers = (((pod.obj.spec as Obj).containers ?? []) as Obj[]).map((c) => String(c.name));
    const container = q.get('container') ?? (containers.length === 1 ? containers[0] : undefined);
    if (!container) throw new HttpError(400, 'BadRequest', `a container name must be specified for pod ${rt.name}, choose one of: [${containers.join(' ')}]`);
    if (!containers.includes(container)) throw new HttpError(400, 'BadRequest', `container ${container} is not valid for pod ${rt.name}`);
    const previous = q.get('previous') === 'true';
    const lines = logs.get(`${rt.namespace}/${rt.name}/${container}${previous ? '/previous' : ''}`);
    if (!lines) {
      if (previous) throw new HttpError(400, 'BadRequest', `previous terminated container "${container}" in pod "${rt.name}" not found`);
      return '';
    }
    const tail = q.get('tailLines');
    const shown = tail !== null ? lines.slice(-Number(tail)) : lines;
    return shown.map((l) => `${l}\n`).join('');
  }

  function watch(rt: Route, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
    const { labelSel, fieldSel } = selectors(q);
    const matches = (c: Change) =>
      c.resource === rt.type && (rt.namespace === undefined || !rt.type.namespaced || c.namespace === rt.namespace) && labelSel(labelsOf(c.object)) && fieldSel(c.object);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders(); // as the API server does: the client knows the watch is open before the first event
    const send = (type: string, object: Obj) => res.write(`${JSON.stringify({ type, object })}\n`);
    const rvParam = q.get('resourceVersion');
    if (rvParam && rvParam !== '0') {
      const from = Number(rvParam);
      if (!Number.isFinite(from) || from < store.oldestWatchable) {
        send('ERROR', statusBody(410, 'Expired', `too old resource version: ${rvParam} (${store.oldestWatchable})`));
        res.end();
        return;
      }
      for (const c of store.history) if (c.rv > from && matches(c)) send(c.type, c.object);
    } else {
      for (const o of listItems(rt, q)) send('ADDED', { ...o, apiVersion: groupVersion(rt.type), kind: rt.type.kind });
    }
    const unsubscribe = store.subscribe((c) => {
      if (matches(c)) send(c.type, c.object);
    });
    openWatches.set(res, `${req.url ?? ''}`);
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    const stop = () => {
      unsubscribe();
      openWatches.delete(res);
      if (timer) clearTimeout(timer);
    };
    req.on('close', stop);
    res.on('close', stop);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const q = url.searchParams;
    const isWatch = q.get('watch') === 'true' || q.get('watch') === '1';
    requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(q),
      watch: isWatch,
      ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}),
      at: performance.now(),
    });
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const json = (code: number, o: unknown) => {
      const text = JSON.stringify(o);
      res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    try {
      if (req.headers.authorization !== `Bearer ${token}`) throw new HttpError(401, 'Unauthorized', 'Unauthorized');
      const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
      if (url.pathname === '/version') return json(200, { major: '1', minor: '31', gitVersion: 'v1.31.0-enssib-stand-in', platform: 'linux/amd64' });
      if (url.pathname === '/api') return json(200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] });
      if (url.pathname === '/apis') return json(200, groupList(types));
      let gv: string;
      let rest: string[];
      if (parts[0] === 'api' && parts[1] === 'v1') {
        gv = 'v1';
        rest = parts.slice(2);
      } else if (parts[0] === 'apis' && parts.length >= 3) {
        gv = `${parts[1]}/${parts[2]}`;
        rest = parts.slice(3);
      } else if (parts[0] === 'apis' && parts.length === 2) {
        const vs = types.filter((t) => t.group === parts[1]);
        if (vs.length === 0) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
        const list = groupList(vs) as { groups: unknown[] };
        return json(200, { kind: 'APIGroup', apiVersion: 'v1', ...(list.groups[0] as object) });
      } else throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
      if (!types.some((t) => groupVersion(t) === gv)) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
      if (rest.length === 0) {
        if (req.method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
        return json(200, resourceList(types, gv));
      }
      const rt = parseRoute(gv, rest);
      const method = req.method ?? 'GET';
      if (method === 'GET') {
        if (rt.name === undefined) {
          if (isWatch) return watch(rt, q, req, res);
          const items = listItems(rt, q).map((o) => {
            if (!rt.type.builtin) return o;
            const { apiVersion: _a, kind: _k, ...restObj } = o;
            return restObj;
          });
          return json(200, { kind: `${rt.type.kind}List`, apiVersion: gv, metadata: { resourceVersion: String(store.resourceVersion) }, items });
        }
        if (rt.sub === 'log') {
          const text = podLog(rt, q);
          res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(text) });
          res.end(text);
          return;
        }
        const s = store.get(rt.type, rt.namespace ?? '', rt.name);
        if (!s) throw notFound(rt.type, rt.name);
        return json(200, store.render(s));
      }
      if (method === 'PATCH') {
        if (rt.name === undefined) throw new HttpError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
        const ct = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
        const r = patch(rt, ct, body, q);
        return json(r.code, r.body);
      }
      if (method === 'POST') {
        if (rt.name !== undefined) throw new HttpError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
        const r = create(rt, body, q);
        return json(r.code, r.body);
      }
      if (method === 'DELETE') {
        if (rt.name === undefined) throw new HttpError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
        const s = store.get(rt.type, rt.namespace ?? '', rt.name);
        if (!s) throw notFound(rt.type, rt.name);
        if (q.get('dryRun') !== 'All') store.delete(rt.type, rt.namespace ?? '', rt.name);
        return json(200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: rt.name, ...(rt.type.group ? { group: rt.type.group } : {}), kind: rt.type.name, uid: (s.obj.metadata as Obj).uid } });
      }
      throw new HttpError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    } catch (e) {
      if (e instanceof HttpError) return json(e.code, statusBody(e.code, e.reason, e.message, e.details));
      return json(500, statusBody(500, 'InternalError', `stand-in internal error: ${(e as Error).stack ?? String(e)}`));
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(e));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    port,
    token,
    store,
    controller,
    requests,
    logs,
    writeKubeconfig(file, o = {}) {
      const ctxName = o.context ?? 'stand-in';
      const text = [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `  - name: stand-in`,
        `    cluster: { server: "${url}", insecure-skip-tls-verify: true }`,
        'users:',
        `  - name: stand-in-admin`,
        `    user: { token: "${o.token ?? token}" }`,
        'contexts:',
        `  - name: ${ctxName}`,
        `    context: { cluster: stand-in, user: stand-in-admin${o.namespace ? `, namespace: ${o.namespace}` : ''} }`,
        `current-context: ${ctxName}`,
        '',
      ].join('\n');
      writeFileSync(file, text, { mode: 0o600 });
      return file;
    },
    seed(obj) {
      const t = typeOf(String(obj.kind), String(obj.apiVersion));
      if (!t) throw new Error(`stand-in: no resource type for ${String(obj.apiVersion)} ${String(obj.kind)}`);
      const o = clone(obj);
      delete o.apiVersion;
      delete o.kind;
      const md = o.metadata as Obj;
      if (t.namespaced) md.namespace ??= 'default';
      const prev = store.get(t, String(md.namespace ?? ''), String(md.name));
      defaults(t, o, prev?.obj);
      const owners = recordUpdate(prev?.obj ?? {}, o, 'stand-in-setup', prev?.owners ?? [], t.builtin, now());
      if (!prev) md.generation = 1;
      else md.generation = Number((prev.obj.metadata as Obj).generation ?? 1) + (deepEqual(withoutMeta(prev.obj), withoutMeta(o)) ? 0 : 1);
      return store.render(store.put(t, o, owners));
    },
    object(apiVersion, kind, namespace, name) {
      const t = typeOf(kind, apiVersion);
      if (!t) throw new Error(`stand-in: no resource type for ${apiVersion} ${kind}`);
      const st = store.get(t, namespace, name);
      return st ? store.render(st) : undefined;
    },
    dropWatches() {
      const n = openWatches.size;
      for (const r of [...openWatches.keys()]) r.end();
      openWatches.clear();
      return n;
    },
    remove(apiVersion, kind, namespace, name) {
      const t = typeOf(kind, apiVersion);
      if (!t) throw new Error(`stand-in: no resource type for ${apiVersion} ${kind}`);
      store.delete(t, namespace, name);
    },
    async close() {
      controller.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
