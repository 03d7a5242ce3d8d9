import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import type * as TarFs from 'tar-fs';
import type { PackOptions } from 'tar-fs';
import { InterruptedError, OperationError, type EnssibError } from '../errors.js';
import { requireCjs } from '../require.js';
import type { BuildContext } from './context.js';
import type { Credentials } from './credentials.js';
import { engineTarget, type EngineTarget } from './engine-target.js';
import { BuildTracker, JsonLines, PushTracker, type BuildEvent, type DockerMessage, type PushEvent } from './stream.js';

export interface BuildRequest {
  reference: string;
  buildArgs: Record<string, string>;
  target?: string;
  labels: Record<string, string>;
  /** Credentials for base images in the private registry. */
  registry?: { host: string; credentials?: Credentials };
  signal?: AbortSignal;
}

/** A build or push that failed inside the stream (or before it). */
export class StreamError extends OperationError {}

/**
 * The Docker engine the user's environment names (DOCKER_HOST, else the
 * default socket). Its ping and image inspections — all an unchanged image
 * needs — are plain HTTP requests to the engine API; dockerode (about 140 ms
 * to load) is loaded only to build, push or pull.
 */
export class Engine {
  readonly target: EngineTarget;
  private docker: Dockerode | undefined;

  private constructor(target: EngineTarget) {
    this.target = target;
  }

  static async connect(env: NodeJS.ProcessEnv): Promise<Engine> {
    const e = new Engine(engineTarget(env));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new OperationError(`the Docker engine at ${e.target.describe} does not answer (no reply to a ping in 15 s)`)), 15_000);
    });
    try {
      const r = await Promise.race([e.get('/_ping'), timeout]);
      if (r.status !== 200) throw httpError(r);
    } catch (err) {
      throw e.error(err);
    } finally {
      clearTimeout(timer);
    }
    return e;
  }

  /** The image ID of a reference in the engine, or null. */
  async imageId(ref: string): Promise<string | null> {
    try {
      const r = await this.get(`/images/${ref.replace(/[^\w.\-/:@]/g, encodeURIComponent)}/json`);
      if (r.status === 404) return null;
      if (r.status !== 200) throw httpError(r);
      const id = (JSON.parse(r.body) as { Id?: unknown }).Id;
      if (typeof id !== 'string') throw new OperationError(`the Docker engine at ${this.target.describe} described ${ref} without an image ID`);
      return id;
    } catch (err) {
      throw this.error(err);
    }
  }

  /** GET on the engine API, as dockerode would send it (same socket or host, same TLS files), one connection per request. */
  private get(path: string): Promise<{ status: number; body: string }> {
    const o = this.target.options;
    const tls = o.protocol === 'https';
    const opts: RequestOptions = {
      method: 'GET',
      path,
      agent: false,
      headers: { connection: 'close' },
      ...(o.socketPath ? { socketPath: o.socketPath } : { host: o.host, port: o.port }),
      ...(tls ? { ca: o.ca, cert: o.cert, key: o.key } : {}),
    };
    return new Promise((resolve, reject) => {
      const req = (tls ? httpsRequest : httpRequest)(opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** dockerode, for the streamed operations (build, push, pull): loaded on first use. */
  private dockerode(): Dockerode {
    if (!this.docker) {
      const Docker = requireCjs('dockerode') as typeof Dockerode;
      this.docker = new Docker(this.target.options);
    }
    return this.docker;
  }

  async build(ctx: BuildContext, req: BuildRequest, onEvent: (e: BuildEvent) => void): Promise<BuildTracker> {
    const tar = await packContext(ctx);
    const tracker = new BuildTracker();
    const opts: Dockerode.ImageBuildOptions = {
      t: req.reference,
      dockerfile: 'Dockerfile',
      buildargs: req.buildArgs,
      labels: req.labels,
      rm: true,
      forcerm: true,
      pull: false,
      ...(req.target ? { target: req.target } : {}),
      ...(req.signal ? { abortSignal: req.signal } : {}),
    };
    const c = req.registry?.credentials;
    if (req.registry && c) opts.registryconfig = { [req.registry.host]: { username: c.username, password: c.password } };
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.dockerode().buildImage(tar, opts);
    } catch (err) {
      tar.destroy();
      throw this.error(err);
    }
    await follow(
      stream,
      (m) => {
        for (const ev of tracker.handle(m)) onEvent(ev);
      },
      req.signal,
    );
    for (const ev of tracker.end()) onEvent(ev);
    return tracker;
  }

  async push(
    reference: string,
    registryHost: string,
    credentials: Credentials | undefined,
    onEvent: (e: PushEvent, t: PushTracker) => void,
    signal?: AbortSignal,
  ): Promise<PushTracker> {
    const i = reference.lastIndexOf(':');
    const repo = reference.slice(0, i);
    const tag = reference.slice(i + 1);
    const tracker = new PushTracker();
    let stream: NodeJS.ReadableStream;
    try {
      stream = (await this.dockerode().getImage(repo).push({
        tag,
        authconfig: authConfig(registryHost, credentials),
        ...(signal ? { abortSignal: signal } : {}),
      })) as NodeJS.ReadableStream;
    } catch (err) {
      throw this.error(err);
    }
    await follow(
      stream,
      (m) => {
        for (const ev of tracker.handle(m)) onEvent(ev, tracker);
      },
      signal,
    );
    return tracker;
  }

  async pull(reference: string, registryHost: string, credentials: Credentials | undefined, onEvent: (e: PushEvent) => void): Promise<PushTracker> {
    const tracker = new PushTracker();
    let stream: NodeJS.ReadableStream;
    try {
      const own = reference.startsWith(`${registryHost}/`);
      stream = (await this.dockerode().pull(reference, own && credentials ? { authconfig: authConfig(registryHost, credentials) } : {})) as NodeJS.ReadableStream;
    } catch (err) {
      throw this.error(err);
    }
    await follow(stream, (m) => {
      for (const ev of tracker.handle(m)) onEvent(ev);
    });
    return tracker;
  }

  /** A dockerode failure in the user's terms. */
  error(err: unknown): EnssibError {
    if (err instanceof OperationError || err instanceof InterruptedError) return err;
    const e = err as NodeJS.ErrnoException & { statusCode?: number; json?: { message?: string } | string | null; reason?: string };
    const where = this.target.describe;
    if (e.code && ['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT', 'ENOTFOUND'].includes(e.code)) {
      return new OperationError(`the Docker engine at ${where} is not running or does not answer (${e.code})`, [
        'Start it (systemctl start docker), or point DOCKER_HOST at the engine to use.',
      ]);
    }
    if (e.code === 'EACCES') {
      return new OperationError(`no permission to use the Docker engine at ${where}`, ['Add your user to the "docker" group (then log in again), or run as root.']);
    }
    if (e.name === 'AbortError') return new InterruptedError('interrupted: the engine was told to stop');
    if (typeof e.statusCode === 'number') {
      const raw = typeof e.json === 'object' && e.json?.message ? e.json.message : typeof e.json === 'string' && e.json.trim() ? e.json : (e.message ?? e.reason ?? '');
      // docker-modem prefixes "(HTTP code 400) unexpected - "
      const msg = String(raw).replace(/^\(HTTP code \d+\)\s*[^-]*-\s*/, '').trim();
      return new StreamError(`the Docker engine answered HTTP ${e.statusCode}: ${msg}`);
    }
    return new OperationError(`Docker engine at ${where}: ${e.message ?? String(err)}`);
  }
}

/** An answer of the engine API other than the one expected, shaped as dockerode reports it (statusCode, json), for Engine.error. */
function httpError(r: { status: number; body: string }): Error {
  let json: unknown = r.body;
  try {
    json = JSON.parse(r.body);
  } catch {
    /* a plain-text answer */
  }
  return Object.assign(new Error(`HTTP ${r.status}`), { statusCode: r.status, json });
}

function authConfig(host: string, c: Credentials | undefined): Dockerode.AuthConfig {
  return c ? { username: c.username, password: c.password, serveraddress: host } : { serveraddress: host };
}

/** Reads a progress stream to its end, handing every message to `fn`. */
function follow(stream: NodeJS.ReadableStream, fn: (m: DockerMessage) => void, signal?: AbortSignal): Promise<void> {
  const lines = new JsonLines();
  return new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer | string) => {
      for (const m of lines.push(chunk)) fn(m);
    });
    stream.on('end', () => {
      for (const m of lines.end()) fn(m);
      resolve();
    });
    stream.on('error', (e: Error) =>
      reject(signal?.aborted || e.name === 'AbortError' ? new InterruptedError('interrupted: the engine was told to stop') : new OperationError(`the Docker engine stream broke: ${e.message}`)),
    );
  });
}

/**
 * The build context as a tar stream (tar-fs): exactly the entries that were
 * hashed, with the mode git would give them (0755 if executable, else 0644)
 * and root ownership, so the image does not depend on the umask or on who
 * checked the repository out.
 */
export async function packContext(ctx: BuildContext): Promise<Readable> {
  const { pack } = requireCjs('tar-fs') as typeof TarFs;
  const keep = new Set(ctx.entries.map((e) => e.path));
  const byPath = new Map(ctx.entries.map((e) => [e.path, e]));
  const top = ctx.entries.filter((e) => !e.path.includes('/')).map((e) => e.path);
  const toPosix = (p: string) => (sep === '/' ? p : p.split(sep).join('/'));
  const options: PackOptions & { sort: boolean } = {
    entries: top,
    // tar-fs 3 sorts folder listings (its type definitions predate the option).
    sort: true,
    ignore: (abs: string) => !keep.has(toPosix(relative(ctx.dir, abs))),
    map: (h) => {
      const e = byPath.get(h.name.replace(/\/$/, ''));
      const header = h as typeof h & { uname?: string; gname?: string };
      header.uid = 0;
      header.gid = 0;
      header.uname = '';
      header.gname = '';
      if (h.type === 'directory') header.mode = 0o755;
      else if (h.type === 'symlink') header.mode = 0o777;
      else header.mode = e?.exec ? 0o755 : 0o644;
      return header;
    },
  };
  return pack(ctx.dir, options) as unknown as Readable;
}
