import { existsSync, readFileSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import type { Invocation } from '../usecase.js';
import type { Context } from '../context.js';
import { cacheDir } from '../cache-dir.js';
import type { RunReport } from '../engine/types.js';
import { journalTaskRun, runMode, taskJson, taskReport } from '../engine/task-report.js';
import { ConfigError, EnssibError, ExitCode, InterruptedError, OperationError, PartialFailureError, UsageError, asEnssibError, tail } from '../errors.js';
import type { Inventory } from '../inventory/inventory.js';
import { listServices, loadService, servicesRoot, type ServiceFolder } from '../site/folder.js';
import { printError } from '../ui/errors.js';
import { mapLimit } from '../limit.js';
import { validateName } from '../validate.js';
import { contentTag, HashCache, hashContext, readBuildContext, type BuildContext } from './context.js';
import { registryCredentials, type Credentials } from './credentials.js';
import { baseImages, instructionLine } from './dockerfile.js';
import type { Engine } from './engine.js';
import { engineTarget, type EngineTarget } from './engine-target.js';
import { gitCommit } from './git.js';
import { withProgress, type ServiceProgress, type ServiceResult } from './progress.js';
import { RegistryClient, type TagInfo } from './registry.js';
import type { StreamFailure } from './stream.js';
import type { ServiceImage } from '../site/image.js';

export interface EnsureOptions {
  /** false (deploy --no-build): only look the content tag up in the registry; absent is an error. */
  build: boolean;
  /** Push what was built (and make sure the registry has the tag). */
  push: boolean;
  /** Refresh the base images before hashing and building. */
  pull?: boolean;
  /** --allow-insecure-engine: send the registry credentials to an engine reached over plain TCP. */
  allowInsecureEngine?: boolean;
}

/**
 * Makes sure each service's image exists for its current content: computes the
 * content tag, asks the registry, and builds and pushes only when the tag is
 * missing. In a client dry run it computes the tag locally and contacts
 * nothing (status 'planned'). Throws when any service fails (the first
 * failure's message, the others in the details).
 */
export async function ensureImages(ctx: Context, services: string[], opts: EnsureOptions): Promise<ServiceImage[]> {
  const run = await runImages(ctx, services, opts);
  if (run.failures.length > 0) throw combined(run);
  if (run.interrupted) throw new InterruptedError('interrupted: some images were not made');
  return run.images;
}

export interface ImageFailure {
  service: string;
  error: EnssibError;
}

export interface ImageRun {
  images: ServiceImage[];
  failures: ImageFailure[];
  interrupted: boolean;
  /** Date.now() at the start. */
  started: number;
}

/** Per service: its folder, what will be sent to the engine, and the hash of it. */
interface Prepared {
  folder: ServiceFolder;
  context: BuildContext;
  contextDigest: string;
  dockerfileText: string;
  bases: string[];
  buildArgs: Record<string, string>;
  commit?: string;
}

/** The work behind `image build`, `image push` and deploy: never throws for one service's failure. */
export async function runImages(ctx: Context, services: string[], opts: EnsureOptions): Promise<ImageRun> {
  const started = Date.now();
  const names = uniqueNames(services);
  const inv = ctx.inventory();
  const root = servicesRoot(inv.root);
  // User mistakes (no folder, no Dockerfile) stop everything before anything is contacted.
  const cacheDir = hashCacheDir(ctx.env);
  const prepared = new Map(names.map((n) => [n, prepare(root, n, cacheDir, ctx.opts.dryRun !== 'client', (l) => ctx.out.debug(l))] as const));
  const registryHost = inv.data.registry.host;

  if (ctx.opts.dryRun === 'client') {
    const images = names.map((n) => {
      const p = prepared.get(n) as Prepared;
      const tag = contentTag(tagInputs(p, Object.fromEntries(p.bases.map((b) => [b, null]))));
      const note =
        p.bases.length > 0
          ? `tag computed without the engine's IDs of ${p.bases.join(', ')} (a real run includes them)`
          : opts.build
            ? 'would ask the registry for this tag, and build and push it if absent'
            : 'would look this tag up in the registry';
      return image(p, registryHost, tag, 'planned', note);
    });
    return { images, failures: [], interrupted: false, started };
  }

  const lookup = registryCredentials(inv, ctx.env);
  if (opts.build && lookup.credentials) refuseInsecureEngine(engineTarget(ctx.env), lookup.credentials, opts.allowInsecureEngine === true);
  const caFile = inv.data.registry.ca ? inv.path(inv.data.registry.ca) : undefined;
  const registry = new RegistryClient({
    host: registryHost,
    ...(caFile ? { ca: readCa(inv, caFile), caFile } : {}),
    ...(lookup.credentials ? { credentials: lookup.credentials, namedHosts: namedHosts(inv) } : {}),
    ...(lookup.hint ? { credentialsHint: lookup.hint } : {}),
  });
  let enginePromise: Promise<Engine> | undefined;
  const engine = () => {
    // The engine client is loaded on first use (an unchanged image FROM scratch never needs it); dockerode later still, to build or push.
    enginePromise ??= import('./engine.js').then((m) => m.Engine.connect(ctx.env));
    return enginePromise;
  };
  const work = new ImageWork(ctx, opts, registry, engine, lookup.credentials, caFile);
  let results: ServiceResult<ServiceImage>[];
  try {
    results = await withProgress(ctx, names, (svc, p) => work.one(prepared.get(svc) as Prepared, p));
  } finally {
    registry.close();
  }
  const images: ServiceImage[] = [];
  const failures: ImageFailure[] = [];
  for (const r of results) {
    if (r.result.status === 'fulfilled') images.push(r.result.value);
    else failures.push({ service: r.service, error: asEnssibError(r.result.reason) });
  }
  return { images, failures, interrupted: ctx.signal.aborted || results.length < names.length, started };
}

/** The host names and addresses the inventory names (hosts, their ssh names, the API server): where a registry's token realm may be. */
function namedHosts(inv: Inventory): string[] {
  return [...inv.data.hosts.flatMap((h) => [h.name, h.address, ...(h.ssh?.host ? [h.ssh.host] : [])]), new URL(inv.data.kubernetes.api).hostname];
}

/** Registry credentials go to the engine with every build, pull and push: never in clear over the network unless the user says so. */
function refuseInsecureEngine(target: EngineTarget, credentials: Credentials, allowed: boolean): void {
  if (!target.plainTcp || allowed) return;
  throw new UsageError(`the Docker engine at ${target.describe} is reached over plain TCP: the registry password of user "${credentials.username}" would cross the network in clear`, [
    'Nothing was sent. Reach the engine over TLS (DOCKER_HOST=tcp://host:2376 with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH), a unix socket, or an ssh tunnel to its socket;',
    'or, on a network you trust, run again with --allow-insecure-engine.',
  ]);
}

function uniqueNames(services: string[]): string[] {
  const out: string[] = [];
  for (const s of services) {
    validateName('service', s);
    if (!out.includes(s)) out.push(s);
  }
  if (out.length === 0) throw new UsageError('no service given', ['Name services (enssib image push ldap mail) or use --all.']);
  return out;
}

/** Where file hashes are kept between runs ($ENSSIB_CACHE_DIR, else $XDG_CACHE_HOME or ~/.cache, then enssib/contexts). */
export function hashCacheDir(env: NodeJS.ProcessEnv): string {
  return cacheDir(env, 'contexts');
}

function prepare(root: string, name: string, cacheDir: string, saveCache: boolean, debug: (line: string) => void): Prepared {
  const folder = loadService(root, name);
  let dockerfileText: string;
  try {
    if (!statSync(folder.dockerfile).isFile()) throw new ConfigError(`${folder.dockerfile} is not a file`);
    dockerfileText = readFileSync(folder.dockerfile, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`service "${name}" has no Dockerfile: ${folder.dockerfile} does not exist`, [
      'enssib builds services/<name>/Dockerfile with the service folder as the build context.',
    ]);
  }
  const context = readBuildContext(folder.dir);
  const started = Date.now();
  const cache = HashCache.open(cacheDir, folder.dir);
  const contextDigest = hashContext(context, cache);
  if (saveCache) cache.save(folder.dir);
  debug(
    `${name}: build context of ${context.entries.length} entries (${context.excluded} left out by .dockerignore) hashed in ${Date.now() - started} ms: ${cache.misses} files read, ${cache.hits} unchanged since the last run`,
  );
  const buildArgs = folder.settings.buildArgs ?? {};
  const commit = gitCommit(folder.dir);
  return {
    folder,
    context,
    contextDigest,
    dockerfileText,
    bases: baseImages(dockerfileText, buildArgs),
    buildArgs,
    ...(commit ? { commit } : {}),
  };
}

function tagInputs(p: Prepared, bases: Record<string, string | null>) {
  return {
    contextDigest: p.contextDigest,
    dockerfile: 'Dockerfile',
    buildArgs: p.buildArgs,
    ...(p.folder.settings.target ? { target: p.folder.settings.target } : {}),
    bases,
  };
}

function image(p: Prepared, registryHost: string, tag: string, status: ServiceImage['status'], note?: string, extra: Partial<ServiceImage> = {}): ServiceImage {
  const name = p.folder.settings.image;
  return {
    service: p.folder.name,
    name,
    tag,
    reference: `${registryHost}/${name}:${tag}`,
    status,
    ...(note ? { note } : {}),
    ...(p.commit ? { commit: p.commit } : {}),
    ...extra,
  };
}

function readCa(inv: Inventory, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new ConfigError(`${inv.file}: registry.ca: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/** One service at a time: tag, registry, build, push. */
class ImageWork {
  constructor(
    private readonly ctx: Context,
    private readonly opts: EnsureOptions,
    private readonly registry: RegistryClient,
    private readonly engine: () => Promise<Engine>,
    private readonly credentials: Credentials | undefined,
    private readonly caFile: string | undefined,
  ) {}

  async one(p: Prepared, progress: ServiceProgress): Promise<ServiceImage> {
    const ctx = this.ctx;
    const apply = ctx.opts.dryRun === false;
    const host = this.registry.host;
    const name = p.folder.settings.image;

    // 1. The tag: the context's hash plus the IDs of the base images the engine has.
    const baseIds: Record<string, string | null> = {};
    if (p.bases.length > 0) {
      const engine = await this.engine();
      for (const base of p.bases) {
        if (this.opts.pull && apply && this.opts.build) await this.pull(engine, base, progress);
        let id = await engine.imageId(base);
        if (id === null && apply && this.opts.build) {
          await this.pull(engine, base, progress);
          id = await engine.imageId(base);
        }
        baseIds[base] = id;
      }
    }
    const tag = contentTag(tagInputs(p, baseIds));
    const reference = `${host}/${name}:${tag}`;
    ctx.out.debug(`${p.folder.name}: content tag ${tag}${p.bases.length ? ` (bases: ${p.bases.map((b) => `${b} ${baseIds[b] ?? 'not in the engine'}`).join(', ')})` : ''}`);

    // 2. Already in the registry? Then nothing to build or push.
    progress.step(`asking ${host} for ${name}:${tag}`);
    let digest: string | null = null;
    try {
      digest = await this.registry.manifestDigest(name, tag);
    } catch (e) {
      if (this.opts.push || !this.opts.build) throw e;
      ctx.out.warn(`${p.folder.name}: cannot ask the registry (${(e as Error).message}); building anyway`);
    }
    if (digest) {
      progress.step(`already in the registry (${short(digest)}): build and push skipped`);
      return image(p, host, tag, 'present', 'already in the registry: build and push skipped', { digest });
    }
    if (!this.opts.build) {
      throw new OperationError(`${reference} is not in the registry`, [
        `The registry has no image for the current content of ${relative(ctx.cwd, p.folder.dir) || p.folder.dir}.`,
        `Build and push it first: enssib image push ${p.folder.name} (or deploy without --no-build).`,
      ]);
    }
    if (!apply) {
      progress.step(`not in the registry: would build${this.opts.push ? ' and push' : ''}`);
      return image(p, host, tag, 'planned', `not in the registry: would build${this.opts.push ? ' and push' : ''}`);
    }

    // 3. Build, unless the engine already has this exact tag.
    const engine = await this.engine();
    let imageId = await engine.imageId(reference);
    let built = false;
    if (imageId) {
      progress.step(`already built in the engine (${short(imageId)})`);
    } else {
      imageId = await this.build(engine, p, reference, progress);
      built = true;
    }
    if (!this.opts.push) {
      const note = built ? 'built' : 'already built in the engine: build skipped';
      progress.step(`${note} (${short(imageId)})`);
      return image(p, host, tag, 'built', note, { imageId });
    }

    // 4. Push; the digest comes from the push stream's final aux message.
    progress.step('pushing');
    let lastShown = 0;
    const pushed = await engine.push(
      reference,
      host,
      this.credentials,
      (ev, t) => {
        progress.output(ev.line);
        const now = Date.now();
        if (ev.kind === 'layer' && now - lastShown > 250) {
          lastShown = now;
          progress.step(`pushing: ${t.summary()}`);
        }
      },
      ctx.signal,
    );
    if (pushed.failure) throw this.pushFailure(p, reference, pushed.failure, engine.target.describe);
    if (!pushed.digest) throw new OperationError(`${p.folder.name}: the Docker engine finished the push of ${reference} without a digest`);
    const note = `pushed: ${pushed.uploaded} layer${pushed.uploaded === 1 ? '' : 's'} uploaded, ${pushed.reused} already there${built ? '' : ' (build skipped: already in the engine)'}`;
    progress.step(`${note} (${short(pushed.digest)})`);
    return image(p, host, tag, 'pushed', note, { digest: pushed.digest, imageId });
  }

  private async pull(engine: Engine, base: string, progress: ServiceProgress): Promise<void> {
    progress.step(`pulling ${base}`);
    const t = await engine.pull(base, this.registry.host, this.credentials, (ev) => progress.output(ev.line));
    if (t.failure) {
      throw new OperationError(`cannot pull the base image ${base}: ${t.failure.message}`, [
        'The Dockerfile starts from it; the engine has no copy and could not fetch one.',
      ]);
    }
  }

  private async build(engine: Engine, p: Prepared, reference: string, progress: ServiceProgress): Promise<string> {
    progress.step('sending the build context');
    const labels: Record<string, string> = { 'fr.enssib.service': p.folder.name, 'fr.enssib.tag': reference.slice(reference.lastIndexOf(':') + 1) };
    if (p.commit) labels['org.opencontainers.image.revision'] = p.commit;
    let tracker;
    try {
      tracker = await engine.build(
        p.context,
        {
          reference,
          buildArgs: p.buildArgs,
          ...(p.folder.settings.target ? { target: p.folder.settings.target } : {}),
          labels,
          registry: { host: this.registry.host, ...(this.credentials ? { credentials: this.credentials } : {}) },
          signal: this.ctx.signal,
        },
        (ev) => {
          if (ev.kind === 'step') progress.step(`Step ${ev.step.n}/${ev.step.total} : ${clip(ev.step.instruction, 70)}`);
          else progress.output(ev.line);
        },
      );
    } catch (e) {
      // The engine refused the build before streaming (a Dockerfile it cannot parse, an unknown target).
      const { StreamError } = await import('./engine.js');
      if (e instanceof StreamError) throw this.buildFailure(p, { message: e.message.replace(/^the Docker engine answered HTTP \d+: /, ''), lines: [] });
      throw e;
    }
    if (tracker.failure) throw this.buildFailure(p, tracker.failure);
    const id = tracker.imageId ?? (await engine.imageId(reference));
    if (!id) throw new OperationError(`${p.folder.name}: the build finished but the engine has no image ${reference}`);
    return id;
  }

  private buildFailure(p: Prepared, f: StreamFailure): OperationError {
    const file = relative(this.ctx.cwd, p.folder.dockerfile) || p.folder.dockerfile;
    const syntax = /dockerfile parse error (?:on )?line (\d+): (.*)$/i.exec(f.message);
    if (syntax) {
      const n = Number(syntax[1]);
      const text = p.dockerfileText.split(/\r?\n/)[n - 1];
      return new OperationError(`${p.folder.name}: Dockerfile syntax error at ${file}:${n}: ${syntax[2]}`, [
        ...(text !== undefined ? [`${n} | ${clip(text, 120)}`] : []),
        'Nothing was built.',
      ]);
    }
    const details: string[] = [];
    if (f.step) {
      const line = instructionLine(p.dockerfileText, f.step.instruction);
      details.push(`failing instruction (step ${f.step.n}/${f.step.total}, ${file}${line ? `:${line}` : ''}): ${f.step.instruction}`);
    } else {
      const m = /line (\d+)/.exec(f.message);
      if (m) details.push(`at ${file}:${m[1]}`);
    }
    details.push(`engine: ${f.message}`);
    if (f.lines.length > 0) details.push('last lines of output:', ...tail(f.lines.join('\n'), 10).map((l) => `  ${l}`));
    else if (f.step) details.push('(the step printed nothing)');
    const what = f.step ? `at step ${f.step.n}/${f.step.total}` : 'before the first step';
    return new OperationError(`${p.folder.name}: the build failed ${what}: ${f.step ? clip(f.step.instruction, 80) : clip(f.message, 120)}`, details);
  }

  private pushFailure(p: Prepared, reference: string, f: StreamFailure, engineWhere: string): OperationError {
    const host = this.registry.host;
    const msg = f.message;
    if (/x509|certificate signed by unknown authority|certificate is not trusted|unknown authority/i.test(msg)) {
      const ca = this.caFile ?? 'the CA file that signs the registry certificate';
      return new OperationError(`${p.folder.name}: the Docker engine does not trust the TLS certificate of registry ${host}`, [
        `enssib checked the registry with ${this.caFile ?? 'the system CAs'}, but the engine (${engineWhere}) looks for the CA elsewhere.`,
        `Install it for the engine: copy ${ca} to /etc/docker/certs.d/${host}/ca.crt on the machine that runs dockerd (no restart needed).`,
        `engine: ${msg}`,
      ]);
    }
    if (/unauthorized|authentication required|denied|no basic auth credentials/i.test(msg)) {
      return new OperationError(`${p.folder.name}: registry ${host} refused the push of ${reference}`, [
        this.credentials ? `The registry did not accept user "${this.credentials.username}" (from ${this.credentials.source}) for pushing.` : 'enssib has no credentials for the registry.',
        `engine: ${msg}`,
      ]);
    }
    if (/connection refused|no such host|i\/o timeout|no route to host|connection reset/i.test(msg)) {
      return new OperationError(`${p.folder.name}: the Docker engine cannot reach registry ${host}`, [`engine: ${msg}`]);
    }
    return new OperationError(`${p.folder.name}: the push of ${reference} failed`, [`engine: ${msg}`, ...(f.lines.length ? ['last lines:', ...f.lines.slice(-8).map((l) => `  ${l}`)] : [])]);
  }
}

function short(digest: string): string {
  const [algo, hex] = digest.split(':');
  return hex ? `${algo}:${hex.slice(0, 12)}` : digest.slice(0, 19);
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function combined(run: ImageRun): EnssibError {
  const [first, ...rest] = run.failures;
  if (!first) return new OperationError('image work failed');
  if (rest.length === 0) return first.error;
  const details = [...first.error.details, ...rest.flatMap((f) => [`${f.error.message}`, ...f.error.details.map((d) => `  ${d}`)])];
  return run.images.length > 0
    ? new PartialFailureError(`${run.failures.length} of ${run.failures.length + run.images.length} images failed: ${first.error.message}`, details)
    : new OperationError(`${run.failures.length} images failed: ${first.error.message}`, details);
}

// ---------------------------------------------------------------- CLI handlers

/** Services named on the command line, or every folder with a Dockerfile for --all. */
function selectServices(ctx: Context, inv: Invocation, title: string): string[] {
  const given = (Array.isArray(inv.args[0]) ? inv.args[0] : inv.args[0] === undefined ? [] : [inv.args[0]]) as string[];
  for (const s of given) validateName('service', s);
  const all = inv.opts.all === true;
  if (all && given.length > 0) throw new UsageError('give service names or --all, not both');
  if (!all && given.length === 0) throw new UsageError('no service given', [`Name the services (enssib ${title} ldap mail) or use --all.`]);
  if (!all) return given;
  const root = servicesRoot(ctx.inventory().root);
  const found = listServices(root).filter((s) => {
    try {
      validateName('service', s);
    } catch {
      ctx.out.warn(`services/${s}: not a valid service name; skipped`);
      return false;
    }
    return existsSync(`${root}/${s}/Dockerfile`);
  });
  if (found.length === 0) throw new ConfigError(`no service folder under ${root} has a Dockerfile`);
  return found;
}

export async function buildCommand(ctx: Context, inv: Invocation): Promise<number> {
  return imageCommand(ctx, inv, { build: true, push: false, pull: inv.opts.pull === true, allowInsecureEngine: inv.opts.allowInsecureEngine === true }, 'image build');
}

export async function pushCommand(ctx: Context, inv: Invocation): Promise<number> {
  return imageCommand(ctx, inv, { build: true, push: true, pull: inv.opts.pull === true, allowInsecureEngine: inv.opts.allowInsecureEngine === true }, 'image push');
}

async function imageCommand(ctx: Context, inv: Invocation, opts: EnsureOptions, title: string): Promise<number> {
  const services = selectServices(ctx, inv, title);
  const run = await runImages(ctx, services, opts);
  const out = ctx.out;
  const c = out.c;
  const dry = ctx.opts.dryRun;
  let exit: number = ExitCode.ok;
  if (run.failures.length > 0) {
    const first = run.failures[0] as ImageFailure;
    exit = run.images.length > 0 ? ExitCode.partial : run.failures.every((f) => f.error.exitCode === first.error.exitCode) ? first.error.exitCode : ExitCode.failed;
  }
  if (run.interrupted) exit = ExitCode.interrupted;
  const report = imageReport(ctx, title, run, exit);
  out.result(
    () =>
      taskJson(report, {
        command: title,
        images: run.images,
        failed: run.failures.map((f) => ({ service: f.service, message: f.error.message, details: f.error.details })),
      }),
    () => {
      const lines: string[] = [];
      if (dry === 'client') lines.push(c.bold(`Dry run of "${title}": nothing was contacted (no engine, no registry).`));
      if (dry === 'server') lines.push(c.bold(`Dry run of "${title}" (server): the engine and the registry were asked, nothing was built or pushed.`));
      if (run.images.length > 0) {
        lines.push(
          ...out.table(
            ['SERVICE', 'STATUS', 'IMAGE', 'DIGEST'],
            run.images.map((i) => [i.service, i.status, i.reference, i.digest ?? '-']),
          ),
        );
        for (const i of run.images) if (i.note && (dry || out.verbose)) lines.push(c.dim(`  ${i.service}: ${i.note}`));
      }
      return lines;
    },
  );
  for (const f of run.failures) {
    if (out.format === 'text') printError(out, f.error);
  }
  if (run.interrupted) out.note('interrupted: the services not started were left alone');
  return exit;
}

/** The images' work as a run report (one item per service), journaled when real. */
function imageReport(ctx: Context, title: string, run: ImageRun, exitCode: number): RunReport {
  const report = taskReport({
    plan: title,
    mode: runMode(ctx),
    started: run.started,
    exitCode,
    phases: [
      {
        title: 'images',
        items: [
          ...run.images.map((i) => ({
            item: i.service,
            status: i.status === 'present' ? ('unchanged' as const) : i.status === 'planned' ? ('planned' as const) : ('done' as const),
            actions: [i.status === 'pushed' ? `push ${i.reference} → ${i.digest ?? '?'}` : i.status === 'built' ? `build ${i.reference}` : `${i.status} ${i.reference}`],
            ...(i.note ? { note: i.note } : {}),
          })),
          ...run.failures.map((f) => ({ item: f.service, status: 'failed' as const, actions: [], error: f.error })),
        ],
      },
    ],
  });
  journalTaskRun(ctx, report);
  return report;
}

// ---------------------------------------------------------------- image list

export interface ServiceTags {
  service: string;
  name: string;
  repository: string;
  tags: (TagInfo & { revision?: string })[];
}

/** The tags in the registry for each service, newest first. */
export async function listImages(ctx: Context, services: string[]): Promise<ServiceTags[]> {
  const inv = ctx.inventory();
  const root = servicesRoot(inv.root);
  const folders = services.map((s) => loadService(root, s));
  const host = inv.data.registry.host;
  const lookup = registryCredentials(inv, ctx.env);
  const caFile = inv.data.registry.ca ? inv.path(inv.data.registry.ca) : undefined;
  const registry = new RegistryClient({
    host,
    ...(caFile ? { ca: readCa(inv, caFile), caFile } : {}),
    ...(lookup.credentials ? { credentials: lookup.credentials, namedHosts: namedHosts(inv) } : {}),
    ...(lookup.hint ? { credentialsHint: lookup.hint } : {}),
  });
  try {
    const out: ServiceTags[] = [];
    for (const f of folders) {
      const name = f.settings.image;
      const tags = await registry.tags(name);
      const infos = await mapLimit(tags, 4, (t) => registry.tagInfo(name, t));
      infos.sort((a, b) => (b.created ?? '').localeCompare(a.created ?? '') || a.tag.localeCompare(b.tag));
      out.push({
        service: f.name,
        name,
        repository: `${host}/${name}`,
        tags: infos.map((i) => {
          const revision = i.labels['org.opencontainers.image.revision'];
          return { ...i, ...(revision ? { revision } : {}) };
        }),
      });
    }
    return out;
  } finally {
    registry.close();
  }
}

export async function listCommand(ctx: Context, inv: Invocation): Promise<number> {
  const given = inv.args[0];
  const one = typeof given === 'string' ? given : undefined;
  if (one !== undefined) validateName('service', one);
  const root = servicesRoot(ctx.inventory().root);
  const services = one !== undefined ? [one] : listServices(root).filter((s) => existsSync(`${root}/${s}/Dockerfile`));
  const out = ctx.out;
  if (ctx.opts.dryRun === 'client') {
    const host = ctx.inventory().data.registry.host;
    out.result(
      () => ({ dryRun: 'client', requests: services.map((s) => `GET https://${host}/v2/${loadService(root, s).settings.image}/tags/list`) }),
      () => [
        out.c.bold('Dry run of "image list": nothing was contacted; it would ask the registry:'),
        ...services.map((s) => `  GET https://${host}/v2/${loadService(root, s).settings.image}/tags/list (then each tag's manifest and config)`),
      ],
    );
    return ExitCode.ok;
  }
  const lists = await listImages(ctx, services);
  out.result(
    () => ({ images: lists }),
    () => {
      const rows = lists.flatMap((l) =>
        l.tags.length === 0
          ? [[l.service, '(none)', '-', '-', '-']]
          : l.tags.map((t) => [l.service, t.tag, t.created ? t.created.replace(/\.\d+Z$/, 'Z') : '-', t.digest, t.revision ? t.revision.slice(0, 12) : '-']),
      );
      return rows.length === 0 ? ['no service folder with a Dockerfile'] : out.table(['SERVICE', 'TAG', 'CREATED', 'DIGEST', 'COMMIT'], rows);
    },
  );
  return ExitCode.ok;
}
