import type { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, InterruptedError, OperationError } from '../errors.js';
import { FIELD_MANAGER, groupOf, isRecord, str, type KObject, type ObjectRef } from './types.js';

/**
 * The Kubernetes API as enssib uses it, over @kubernetes/client-node: API
 * discovery (namespaced or cluster-scoped, custom resources included),
 * server-side apply, reads, lists, JSON patches, watches and pod logs. Objects
 * travel as plain JSON, exactly as written in the manifests (the client's
 * typed models would drop fields they do not know).
 */
export interface KubeApi {
  /** The API server URL, for messages. */
  readonly server: string;
  /** Namespace of the kubeconfig's current context, if it sets one. */
  readonly contextNamespace: string | undefined;
  resource(apiVersion: string, kind: string): Promise<ResourceInfo>;
  get(ref: ObjectRef): Promise<KObject | null>;
  list(apiVersion: string, kind: string, namespace: string | undefined, opts?: { labelSelector?: string; fieldSelector?: string }): Promise<ListResult>;
  /** Server-side apply (field manager enssib unless given). Throws ApplyConflictError on 409 without force. */
  apply(obj: KObject, opts: { force: boolean; dryRun?: boolean; fieldManager?: string }): Promise<ApplyResult>;
  jsonPatch(ref: ObjectRef, ops: JsonPatchOp[], fieldManager: string): Promise<KObject>;
  delete(ref: ObjectRef): Promise<void>;
  /** The collection URL path of a kind in a namespace (for watches). */
  collectionPath(apiVersion: string, kind: string, namespace: string | undefined): Promise<string>;
  /** Starts a watch; events arrive through onEvent until stop() or onDone. */
  watch(path: string, params: Record<string, string>, onEvent: (type: string, obj: Record<string, unknown>) => void, onDone: (err: unknown) => void): Promise<{ stop(): void }>;
  podLog(namespace: string, pod: string, container: string, opts: { previous?: boolean; tailLines?: number }): Promise<string>;
}

export interface ResourceInfo {
  /** plural, e.g. deployments */
  name: string;
  namespaced: boolean;
  kind: string;
}

export interface ListResult {
  items: KObject[];
  resourceVersion: string;
}

export interface ApplyResult {
  object: KObject;
  /** true when the object did not exist (HTTP 201). */
  created: boolean;
}

export type JsonPatchOp = { op: 'add' | 'replace' | 'test'; path: string; value: unknown } | { op: 'remove'; path: string };

export interface FieldConflict {
  manager: string;
  field: string;
  message: string;
}

/** A server-side apply refused because other field managers own fields it would change. */
export class ApplyConflictError extends OperationError {
  readonly what: string;
  readonly reason: string;
  readonly conflicts: FieldConflict[];
  constructor(what: string, conflicts: FieldConflict[], reason: string, hints: string[] = []) {
    super(`${what}: ${reason}`, [...conflicts.map((c) => `${c.field} is managed by "${c.manager}"`), ...hints]);
    this.what = what;
    this.reason = reason;
    this.conflicts = conflicts;
  }
}

/** The cluster does not serve an API group/version (a custom resource whose software is not installed). */
export class UnservedApiError extends OperationError {}

/** An HTTP answer other than 2xx, with the API's Status object when it sent one. */
export class ApiStatusError extends OperationError {
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string, message: string, details: string[] = []) {
    super(message, details);
    this.code = code;
    this.reason = reason;
  }
}

interface RawResponse {
  status: number;
  contentType: string;
  text: string;
}

export interface ConnectOptions {
  /** Aborts requests in flight (Ctrl-C). */
  signal?: AbortSignal;
  /** Per-request time limit (ms); watches are not limited. */
  timeoutMs?: number;
  /** Where the kubeconfig came from, for messages. */
  source?: string;
}

function statusMessage(text: string): { message: string; reason: string; causes: Record<string, unknown>[] } {
  try {
    const s: unknown = JSON.parse(text);
    if (isRecord(s)) {
      const details = isRecord(s.details) ? s.details : {};
      const causes = Array.isArray(details.causes) ? details.causes.filter(isRecord) : [];
      return { message: str(s.message) ?? text, reason: str(s.reason) ?? '', causes };
    }
  } catch {
    /* not JSON */
  }
  return { message: text.trim().slice(0, 500), reason: '', causes: [] };
}

/** Turns a transport failure into words: connection refused, unknown host, time limit. */
export function networkError(e: unknown, server: string, source: string | undefined): OperationError | null {
  const err = e as { code?: unknown; errno?: unknown; name?: unknown; message?: unknown; type?: unknown };
  const code = typeof err.code === 'string' ? err.code : typeof err.errno === 'string' ? err.errno : '';
  const where = source ? [`kubeconfig: ${source}`] : [];
  const msg = typeof err.message === 'string' ? err.message : String(e);
  if (code === 'ECONNREFUSED') return new OperationError(`cannot reach the Kubernetes API server at ${server}: connection refused`, ['Is the API server running, and is this the right kubeconfig and context?', ...where], e);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new OperationError(`cannot reach the Kubernetes API server at ${server}: unknown host`, where, e);
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT' || code === 'ECONNRESET' || code === 'EPIPE') {
    return new OperationError(`cannot reach the Kubernetes API server at ${server} (${code})`, where, e);
  }
  if (err.name === 'AbortError' || err.name === 'TimeoutError' || err.type === 'aborted') return new OperationError(`no answer from the Kubernetes API server at ${server} in time`, where, e);
  if (/certificate|self[- ]signed|CERT_|unable to verify/i.test(msg) || /CERT|SSL|TLS/.test(code)) {
    return new OperationError(`TLS error talking to ${server}: ${msg}`, ["The kubeconfig's certificate-authority does not sign the API server's certificate.", ...where], e);
  }
  return null;
}

/** Creates the API client from a loaded kubeconfig (loads @kubernetes/client-node lazily). */
export async function createKubeApi(kc: KubeConfig, opts: ConnectOptions = {}): Promise<KubeApi> {
  const k = await import('@kubernetes/client-node');
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ConfigError('the kubeconfig has no current cluster');
  const server = cluster.server;
  if (server.startsWith('http://') && !cluster.skipTLSVerify) {
    throw new ConfigError(`the kubeconfig's cluster ${cluster.name} uses plain HTTP (${server})`, [
      "Use the API server's https:// address with its certificate-authority (as kubeadm writes /etc/kubernetes/admin.conf): the credentials must not cross the network in clear.",
    ]);
  }
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const contextNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace;

  class RawObjectApi extends k.KubernetesObjectApi {
    private readonly discovery = new Map<string, Promise<ResourceInfo[]>>();

    /** One HTTP request through the client's configured transport and authentication. */
    async raw(method: 'GET' | 'PATCH' | 'DELETE' | 'POST', path: string, o: { query?: Record<string, string>; body?: string; contentType?: string; accept?: string } = {}): Promise<RawResponse> {
      const rc = this.configuration.baseServer.makeRequestContext(path, method as never);
      rc.setHeaderParam('Accept', o.accept ?? 'application/json');
      for (const [key, v] of Object.entries(o.query ?? {})) rc.setQueryParam(key, v);
      if (o.body !== undefined) {
        rc.setHeaderParam('Content-Type', o.contentType ?? 'application/json');
        rc.setBody(o.body);
      }
      const signals = [AbortSignal.timeout(timeoutMs), ...(opts.signal ? [opts.signal] : [])];
      rc.setSignal(AbortSignal.any(signals) as never);
      try {
        return (await this.requestPromise(rc)) as unknown as RawResponse;
      } catch (e) {
        if (e instanceof OperationError) throw e;
        if (opts.signal?.aborted) throw new InterruptedError();
        const m = e instanceof Error ? e.message : String(e);
        if (/HTTP protocol is not allowed/.test(m)) throw new ConfigError(`the kubeconfig's cluster uses plain HTTP (${server})`, ["Use the API server's https:// address with its certificate-authority."]);
        throw networkError(e, server, opts.source) ?? new OperationError(`request to the Kubernetes API server at ${server} failed: ${m}`, [], e);
      }
    }

    protected override async processResponse<T>(response: { httpStatusCode: number; headers: Record<string, string>; body: { text(): Promise<string> } }): Promise<T> {
      const raw: RawResponse = { status: response.httpStatusCode, contentType: response.headers['content-type'] ?? '', text: await response.body.text() };
      return raw as unknown as T;
    }

    async resources(apiVersion: string): Promise<ResourceInfo[]> {
      let p = this.discovery.get(apiVersion);
      if (!p) {
        p = (async () => {
          const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
          const r = await this.raw('GET', path);
          if (r.status === 404) return [];
          check(r, `discovery of ${apiVersion}`);
          const list: unknown = JSON.parse(r.text);
          const resources = isRecord(list) && Array.isArray(list.resources) ? list.resources.filter(isRecord) : [];
          return resources
            .filter((x) => typeof x.name === 'string' && !x.name.includes('/'))
            .map((x) => ({ name: String(x.name), namespaced: x.namespaced === true, kind: String(x.kind) }));
        })();
        this.discovery.set(apiVersion, p);
        p.catch(() => this.discovery.delete(apiVersion));
      }
      return p;
    }

    setNamespace(kcfg: KubeConfig): void {
      this.setDefaultNamespace(kcfg);
    }
  }

  function check(r: RawResponse, what: string): void {
    if (r.status >= 200 && r.status < 300) return;
    const s = statusMessage(r.text);
    if (r.status === 401) {
      throw new ApiStatusError(401, 'Unauthorized', `the Kubernetes API server at ${server} refused the credentials (401 Unauthorized)`, [
        "The kubeconfig user's token or certificate is wrong or has expired.",
        ...(opts.source ? [`kubeconfig: ${opts.source}`] : []),
      ]);
    }
    if (r.status === 403) throw new ApiStatusError(403, 'Forbidden', `${what}: forbidden: ${s.message}`, ['The kubeconfig user lacks the RBAC permission for this.']);
    if (r.status === 409 && s.causes.some((c) => c.reason === 'FieldManagerConflict')) {
      const conflicts = s.causes
        .filter((c) => c.reason === 'FieldManagerConflict')
        .map((c) => {
          const m = /conflict with "([^"]+)"/.exec(str(c.message) ?? '');
          return { manager: m?.[1] ?? 'another manager', field: (str(c.field) ?? '').replace(/^\./, ''), message: str(c.message) ?? '' };
        });
      throw new ApplyConflictError(what, conflicts, s.message.split('\n')[0] ?? s.message);
    }
    const details = s.causes.map((c) => `${str(c.field) ?? ''}${c.field ? ': ' : ''}${str(c.message) ?? ''}`).filter((l) => l.trim() !== '');
    throw new ApiStatusError(r.status, s.reason, `${what}: ${s.message}`, details.length > 1 ? details : []);
  }

  const api = kc.makeApiClient(RawObjectApi);
  api.setNamespace(kc);

  const parse = (r: RawResponse): KObject => JSON.parse(r.text) as KObject;

  async function resource(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const list = await api.resources(apiVersion);
    const found = list.find((x) => x.kind === kind);
    if (!found) {
      if (list.length === 0) {
        const group = groupOf(apiVersion);
        const crd = group.includes('.') && !group.endsWith('.k8s.io');
        throw new UnservedApiError(`the cluster does not serve the API ${apiVersion}`, [
          crd ? `${kind} is a custom resource: is the software that defines it installed (for Calico policies: Calico, and its API server for projectcalico.org/v3)?` : `Check the apiVersion of ${kind} against \`kubectl api-versions\`.`,
        ]);
      }
      throw new OperationError(`the cluster serves ${apiVersion} but no kind ${kind} in it`, [`Kinds in ${apiVersion}: ${list.map((x) => x.kind).join(', ')}`]);
    }
    return found;
  }

  async function objectPath(ref: ObjectRef): Promise<{ path: string; info: ResourceInfo; namespace?: string }> {
    const info = await resource(ref.apiVersion, ref.kind);
    const base = ref.apiVersion.includes('/') ? `/apis/${ref.apiVersion}` : `/api/${ref.apiVersion}`;
    const ns = info.namespaced ? (ref.namespace ?? contextNamespace ?? 'default') : undefined;
    const path = `${base}${ns ? `/namespaces/${encodeURIComponent(ns)}` : ''}/${info.name}/${encodeURIComponent(ref.name)}`;
    return { path, info, ...(ns ? { namespace: ns } : {}) };
  }

  const what = (ref: ObjectRef) => `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`;

  const self: KubeApi = {
    server,
    contextNamespace,
    resource,
    async get(ref) {
      const { path } = await objectPath(ref);
      const r = await api.raw('GET', path);
      if (r.status === 404) return null;
      check(r, `reading ${what(ref)}`);
      return parse(r);
    },
    async list(apiVersion, kind, namespace, o = {}) {
      const path = await self.collectionPath(apiVersion, kind, namespace);
      const query: Record<string, string> = {};
      if (o.labelSelector) query.labelSelector = o.labelSelector;
      if (o.fieldSelector) query.fieldSelector = o.fieldSelector;
      const r = await api.raw('GET', path, { query });
      check(r, `listing ${kind}`);
      const l: unknown = JSON.parse(r.text);
      const items = isRecord(l) && Array.isArray(l.items) ? (l.items.filter(isRecord) as unknown as KObject[]) : [];
      for (const i of items) {
        i.apiVersion ??= apiVersion;
        i.kind ??= kind;
      }
      return { items, resourceVersion: str(isRecord(l) && isRecord(l.metadata) ? l.metadata.resourceVersion : undefined) ?? '' };
    },
    async apply(obj, o) {
      const ref = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}) };
      const { path, namespace } = await objectPath(ref);
      const body = namespace ? { ...obj, metadata: { ...obj.metadata, namespace } } : obj;
      const query: Record<string, string> = { fieldManager: o.fieldManager ?? FIELD_MANAGER, force: String(o.force) };
      if (o.dryRun) query.dryRun = 'All';
      const r = await api.raw('PATCH', path, { query, body: JSON.stringify(body), contentType: 'application/apply-patch+yaml' });
      check(r, `applying ${what({ ...ref, ...(namespace ? { namespace } : {}) })}`);
      return { object: parse(r), created: r.status === 201 };
    },
    async jsonPatch(ref, ops, fieldManager) {
      const { path } = await objectPath(ref);
      const r = await api.raw('PATCH', path, { query: { fieldManager }, body: JSON.stringify(ops), contentType: 'application/json-patch+json' });
      check(r, `patching ${what(ref)}`);
      return parse(r);
    },
    async delete(ref) {
      const { path } = await objectPath(ref);
      const r = await api.raw('DELETE', path);
      if (r.status === 404) return;
      check(r, `deleting ${what(ref)}`);
    },
    async collectionPath(apiVersion, kind, namespace) {
      const info = await resource(apiVersion, kind);
      const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      return `${base}${info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${info.name}`;
    },
    async watch(path, params, onEvent, onDone) {
      const w = new k.Watch(kc);
      let stopped = false;
      let controller: AbortController | undefined;
      // the handle works at once, even before the server has answered (a stop then cancels the request)
      const handle = {
        stop() {
          stopped = true;
          controller?.abort();
        },
      };
      void w
        .watch(
          path,
          params,
          (type, obj) => {
            if (!stopped && isRecord(obj)) onEvent(type, obj);
          },
          (err) => {
            if (!stopped) onDone(err ? (networkError(err, server, opts.source) ?? err) : null);
          },
        )
        .then((c) => {
          controller = c;
          if (stopped) c.abort();
        })
        .catch((e: unknown) => {
          if (!stopped) onDone(networkError(e, server, opts.source) ?? e);
        });
      return handle;
    },
    async podLog(namespace, pod, container, o) {
      const query: Record<string, string> = { container };
      if (o.previous) query.previous = 'true';
      if (o.tailLines !== undefined) query.tailLines = String(o.tailLines);
      const r = await api.raw('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log`, { query, accept: 'text/plain' });
      check(r, `reading the logs of pod ${namespace}/${pod}`);
      return r.text;
    },
  };
  return self;
}
