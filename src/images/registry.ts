import { Agent, request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { OperationError } from '../errors.js';
import type { Credentials } from './credentials.js';

/**
 * A client of the registry HTTP API v2 (the private registry of the site):
 * TLS checked against the inventory's CA, basic auth or the token flow,
 * manifests looked up by tag, tags listed with their creation time.
 */
export interface RegistryOptions {
  /** host[:port] as in the inventory */
  host: string;
  /** PEM of the CA that signs the registry's certificate; default: the system's CAs. */
  ca?: string | Buffer;
  /** The CA file, for messages. */
  caFile?: string;
  credentials?: Credentials;
  /**
   * Other hosts (names, addresses) the inventory names: a token realm there may
   * receive the credentials too. Any other realm is refused.
   */
  namedHosts?: readonly string[];
  /** Why there are no credentials (a credential helper), for messages. */
  credentialsHint?: string;
  timeoutMs?: number;
}

export const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
];

export interface TagInfo {
  tag: string;
  digest: string;
  /** From the image config; absent for manifest lists. */
  created?: string;
  labels: Record<string, string>;
}

interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const MAX_BODY = 8 * 1024 * 1024;

export class RegistryClient {
  readonly host: string;
  private readonly agent: Agent;
  private readonly opts: RegistryOptions;
  private readonly tokens = new Map<string, string>();
  private scheme: 'basic' | 'bearer' | 'none' | undefined;
  private challenge: Record<string, string> = {};

  constructor(opts: RegistryOptions) {
    this.opts = opts;
    this.host = opts.host;
    this.agent = new Agent({ keepAlive: true, maxSockets: 4, ...(opts.ca ? { ca: opts.ca } : {}) });
  }

  close(): void {
    this.agent.destroy();
  }

  /** GET /v2/: reachable, certificate trusted, credentials accepted. */
  async ping(): Promise<void> {
    const r = await this.authed('GET', '/v2/', {}, '');
    if (r.status !== 200) throw this.unexpected('GET /v2/', r);
  }

  /** The manifest digest of name:tag, or null when the registry does not have it. */
  async manifestDigest(name: string, tag: string): Promise<string | null> {
    const path = `/v2/${name}/manifests/${encodeURIComponent(tag)}`;
    const r = await this.authed('HEAD', path, { accept: MANIFEST_TYPES.join(', ') }, `repository:${name}:pull`);
    if (r.status === 404) return null;
    if (r.status !== 200) throw this.unexpected(`HEAD ${path}`, r);
    const d = r.headers['docker-content-digest'];
    if (typeof d === 'string' && d.startsWith('sha256:')) return d;
    // Some registries omit the header on HEAD: fetch the manifest and hash it.
    const g = await this.authed('GET', path, { accept: MANIFEST_TYPES.join(', ') }, `repository:${name}:pull`);
    if (g.status !== 200) throw this.unexpected(`GET ${path}`, g);
    const { createHash } = await import('node:crypto');
    return `sha256:${createHash('sha256').update(g.body).digest('hex')}`;
  }

  /** Every tag of a repository ([] when the repository does not exist yet). */
  async tags(name: string): Promise<string[]> {
    const out: string[] = [];
    let path: string | null = `/v2/${name}/tags/list?n=1000`;
    for (let pages = 0; path && pages < 100; pages++) {
      const r = await this.authed('GET', path, { accept: 'application/json' }, `repository:${name}:pull`);
      if (r.status === 404) return [];
      if (r.status !== 200) throw this.unexpected(`GET ${path}`, r);
      const body = this.json(r, path) as { tags?: string[] | null };
      out.push(...(body.tags ?? []));
      const link = r.headers.link;
      const m = typeof link === 'string' ? /<([^>]+)>;\s*rel="next"/.exec(link) : null;
      path = m?.[1] ? (m[1].startsWith('/') ? m[1] : new URL(m[1]).pathname + new URL(m[1]).search) : null;
    }
    return out;
  }

  /** A tag's digest, creation time and labels (from the image config blob). */
  async tagInfo(name: string, tag: string): Promise<TagInfo> {
    const path = `/v2/${name}/manifests/${encodeURIComponent(tag)}`;
    const scope = `repository:${name}:pull`;
    const r = await this.authed('GET', path, { accept: MANIFEST_TYPES.join(', ') }, scope);
    if (r.status !== 200) throw this.unexpected(`GET ${path}`, r);
    const digestHeader = r.headers['docker-content-digest'];
    const { createHash } = await import('node:crypto');
    const digest = typeof digestHeader === 'string' ? digestHeader : `sha256:${createHash('sha256').update(r.body).digest('hex')}`;
    const manifest = this.json(r, path) as { config?: { digest?: string } };
    const cfgDigest = manifest.config?.digest;
    if (!cfgDigest) return { tag, digest, labels: {} };
    const bpath = `/v2/${name}/blobs/${cfgDigest}`;
    const b = await this.authed('GET', bpath, {}, scope);
    if (b.status !== 200) throw this.unexpected(`GET ${bpath}`, b);
    const cfg = this.json(b, bpath) as { created?: string; config?: { Labels?: Record<string, string> | null } };
    return { tag, digest, ...(cfg.created ? { created: cfg.created } : {}), labels: cfg.config?.Labels ?? {} };
  }

  private json(r: Response, path: string): unknown {
    try {
      return JSON.parse(r.body.toString('utf8'));
    } catch {
      throw new OperationError(`registry ${this.host}: ${path} did not answer JSON`);
    }
  }

  /** A request with whatever auth the registry asked for; on a 401 learns the scheme once and retries. */
  private async authed(method: string, path: string, headers: Record<string, string>, scope: string): Promise<Response> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const h = { ...headers };
      const auth = await this.authorization(scope);
      if (auth) h.authorization = auth;
      const r = await this.send(method, path, h);
      if (r.status !== 401) return r;
      this.learn(r.headers['www-authenticate']);
      if (this.scheme === 'basic') {
        // Basic credentials sent and refused: wrong; none to send: missing.
        if (auth?.startsWith('Basic ') || !this.opts.credentials) throw this.refused();
        continue;
      }
      if (this.scheme === 'bearer') {
        this.tokens.delete(scope);
        continue;
      }
      throw this.refused();
    }
    throw this.refused();
  }

  private learn(header: string | string[] | undefined): void {
    const v = Array.isArray(header) ? (header[0] ?? '') : (header ?? '');
    const m = /^\s*(\w+)\s*(.*)$/.exec(v);
    const scheme = (m?.[1] ?? '').toLowerCase();
    this.scheme = scheme === 'bearer' ? 'bearer' : scheme === 'basic' ? 'basic' : 'none';
    this.challenge = {};
    for (const p of (m?.[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) this.challenge[p[1] as string] = p[2] as string;
  }

  private async authorization(scope: string): Promise<string | undefined> {
    const c = this.opts.credentials;
    if (this.scheme === undefined || this.scheme === 'basic') return c?.basic();
    if (this.scheme !== 'bearer') return undefined;
    const cached = this.tokens.get(scope);
    if (cached) return `Bearer ${cached}`;
    const realm = this.challenge.realm;
    if (!realm) throw new OperationError(`registry ${this.host} asks for a token but names no realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new OperationError(`registry ${this.host} names a token realm that is not a URL: ${JSON.stringify(realm.slice(0, 200))}`);
    }
    if (c) this.checkRealm(url, c);
    if (this.challenge.service) url.searchParams.set('service', this.challenge.service);
    if (scope) url.searchParams.set('scope', scope);
    const r = await this.send('GET', url.pathname + url.search, c ? { authorization: c.basic() } : {}, url);
    if (r.status === 401 || r.status === 403) throw this.refused();
    if (r.status !== 200) throw this.unexpected(`GET ${url.origin}${url.pathname}`, r);
    const body = this.json(r, url.pathname) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new OperationError(`registry ${this.host}: the token service gave no token`);
    this.tokens.set(scope, token);
    return `Bearer ${token}`;
  }

  /**
   * The registry's answer chooses where the token request goes, with the Basic
   * credentials: only to the registry's own host, or over https to a host the
   * inventory names — never wherever a registry (or whoever answers in its
   * place) points.
   */
  private checkRealm(url: URL, c: Credentials): void {
    const host = url.hostname.toLowerCase();
    const own = splitHost(this.host)[0].toLowerCase();
    const named = (this.opts.namedHosts ?? []).map((h) => h.toLowerCase());
    if (url.protocol === 'https:' && (host === own || named.includes(host))) return;
    throw new OperationError(`registry ${this.host} points its token requests at ${url.origin}, which is ${url.protocol !== 'https:' ? 'not https' : 'neither the registry nor a host the inventory names'}: the credentials of user "${c.username}" were not sent`, [
      'A token service on another host must be named in the inventory (as a host, or as the registry) and served over https.',
    ]);
  }

  private refused(): OperationError {
    const c = this.opts.credentials;
    if (c) {
      return new OperationError(`registry ${this.host} refused the credentials of user "${c.username}" (from ${c.source})`, [
        'Check the user name and password: `docker login` rewrites ~/.docker/config.json; the inventory names registry.auth.passwordFile.',
      ]);
    }
    return new OperationError(`registry ${this.host} asks for credentials and enssib has none`, [
      this.opts.credentialsHint ?? `Run \`docker login ${this.host}\` (it writes ~/.docker/config.json), or set registry.auth { username, passwordFile } in the inventory.`,
    ]);
  }

  private unexpected(what: string, r: Response): OperationError {
    let msg: string;
    try {
      const b = JSON.parse(r.body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
      msg = (b.errors ?? []).map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ');
    } catch {
      msg = r.body.toString('utf8').slice(0, 200).trim();
    }
    return new OperationError(`registry ${this.host}: ${what} answered HTTP ${r.status}${msg ? ` (${msg})` : ''}`);
  }

  private send(method: string, path: string, headers: Record<string, string>, url?: URL): Promise<Response> {
    const [hostname, port] = splitHost(this.host);
    const target = url ?? new URL(`https://${hostname}:${port}${path}`);
    if (target.protocol !== 'https:') {
      return Promise.reject(new OperationError(`registry ${this.host}: refusing to send credentials over ${target.protocol} to ${target.host}`));
    }
    const timeout = this.opts.timeoutMs ?? 20_000;
    return new Promise<Response>((resolve, reject) => {
      const req = request(
        {
          method,
          hostname: target.hostname,
          port: target.port || 443,
          path: target.pathname + target.search,
          headers: { 'user-agent': 'enssib', ...headers },
          agent: this.agent,
          timeout,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_BODY) {
              req.destroy(new OperationError(`registry ${this.host}: answer to ${method} ${target.pathname} is larger than ${MAX_BODY / 1024 / 1024} MiB`));
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', (e) => reject(this.networkError(e)));
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (e) => reject(e instanceof OperationError ? e : this.networkError(e)));
      req.end();
    });
  }

  /** A connection or TLS failure, told in the user's terms. */
  networkError(e: unknown): OperationError {
    const err = e as NodeJS.ErrnoException;
    const code = err.code ?? '';
    const h = this.host;
    const ca = this.opts.caFile;
    if (['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE'].includes(code)) {
      const what = code === 'ECONNREFUSED' ? 'connection refused' : code === 'ETIMEDOUT' ? 'no answer' : code.toLowerCase();
      return new OperationError(`registry ${h} does not answer (${what})`, [`Is the registry running, and is ${h} the right host and port (registry.host in the inventory)?`], e);
    }
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      return new OperationError(`registry ${h}: no such host name (${code})`, ['Check registry.host in the inventory, /etc/hosts and DNS.'], e);
    }
    const tls = new Set([
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'UNABLE_TO_GET_ISSUER_CERT',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      'CERT_SIGNATURE_FAILURE',
      'CERT_UNTRUSTED',
    ]);
    if (tls.has(code)) {
      return new OperationError(
        `registry ${h}: its TLS certificate is not signed by ${ca ? `the CA in ${ca}` : "any CA this machine trusts"} (${code})`,
        ca
          ? ['Either the registry serves the wrong certificate, or registry.ca in the inventory names the wrong CA file.']
          : ['Set registry.ca in the inventory to the file of the CA that signs the registry certificate.'],
        e,
      );
    }
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return new OperationError(`registry ${h}: its TLS certificate is not for the name ${splitHost(h)[0]}`, [err.message], e);
    }
    if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
      return new OperationError(`registry ${h}: its TLS certificate ${code === 'CERT_HAS_EXPIRED' ? 'has expired' : 'is not valid yet'}`, [], e);
    }
    if (code.startsWith('ERR_SSL') || /SSL|TLS/i.test(err.message ?? '')) {
      return new OperationError(`registry ${h}: TLS failed (${err.message})`, ['The registry must serve HTTPS.'], e);
    }
    return new OperationError(`registry ${h}: ${err.message ?? String(e)}`, [], e);
  }
}

/** "host:port" → [host, port]; the port defaults to 443. */
export function splitHost(host: string): [string, number] {
  const m = /^(.*):(\d+)$/.exec(host);
  return m ? [m[1] as string, Number(m[2])] : [host, 443];
}
