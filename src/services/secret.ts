import { readFileSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Invocation } from '../usecase.js';
import type { Context } from '../context.js';
import { journalTaskRun, runMode, taskJson, taskReport } from '../engine/task-report.js';
import type { RunReport } from '../engine/types.js';
import { ExitCode, UsageError } from '../errors.js';
import { comparable } from '../k8s/diff.js';
import { deepEqual, MANAGED_BY, type KObject } from '../k8s/types.js';
import { validateName } from '../validate.js';
import { applyOwned } from './apply.js';
import { connect, defaultNamespace, type ServiceDeps } from './common.js';

/** The API server refuses Secrets above 1 MiB. */
export const MAX_SECRET_BYTES = 1024 * 1024;
const KEY = /^[-._a-zA-Z0-9]+$/;

export interface SecretFile {
  key: string;
  path: string;
  bytes: number;
}

/** Parses "key=path" (or "path": the key is the file name) and checks every file; never returns the contents. */
export function parseFromFiles(specs: unknown, cwd: string): SecretFile[] {
  const list = (Array.isArray(specs) ? specs : specs === undefined ? [] : [specs]).map(String);
  if (list.length === 0) throw new UsageError('give the Secret its files: --from-file KEY=PATH (repeatable)', ['e.g. enssib secret create cert-ldap --from-file tls.crt=ldap.crt --from-file tls.key=ldap.key']);
  const out: SecretFile[] = [];
  let total = 0;
  for (const spec of list) {
    const eq = spec.indexOf('=');
    const key = eq >= 0 ? spec.slice(0, eq) : basename(spec);
    const path = eq >= 0 ? spec.slice(eq + 1) : spec;
    const shownKey = JSON.stringify(key.slice(0, 60));
    if (path === '') throw new UsageError(`--from-file ${JSON.stringify(spec.slice(0, 80))}: no file after "="`);
    if (key === '' || key === '.' || key === '..' || key.length > 253 || !KEY.test(key)) {
      throw new UsageError(`--from-file: key ${shownKey} is not valid`, ['A Secret key is made of letters, digits, "-", "_" and "." (e.g. tls.crt), at most 253 characters.']);
    }
    if (out.some((f) => f.key === key)) throw new UsageError(`--from-file: key ${shownKey} is given twice`);
    const full = resolve(cwd, path);
    let st;
    try {
      st = statSync(full);
    } catch (e) {
      throw new UsageError(`--from-file ${key}: ${full}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`}`);
    }
    if (!st.isFile()) throw new UsageError(`--from-file ${key}: ${full} is not a regular file`);
    total += st.size;
    if (total > MAX_SECRET_BYTES) throw new UsageError(`the Secret's files add up to more than 1 MiB, the most the API server stores in one Secret`);
    out.push({ key, path: full, bytes: st.size });
  }
  return out;
}

export interface SecretReport {
  name: string;
  namespace: string;
  keys: { key: string; bytes: number }[];
  action: 'created' | 'configured' | 'unchanged' | 'planned' | 'would change';
  dryRun: false | 'client' | 'server';
  /** The run as every command that changes the world reports it (journaled when real; never the contents). */
  run: RunReport;
}

/** `enssib secret create <name> --from-file key=path…` */
export async function secretCreateCommand(ctx: Context, inv: Invocation, deps: Pick<ServiceDeps, 'connect'> = {}): Promise<number> {
  const { run, ...r } = await createSecret(ctx, inv.args[0], inv.opts.fromFile, { namespace: inv.opts.namespace, type: inv.opts.type, forceConflicts: inv.opts.forceConflicts === true }, deps);
  const keys = r.keys.map((k) => `${k.key} (${k.bytes} bytes)`).join(', ');
  ctx.out.result(
    () => taskJson(run, r),
    () => [r.dryRun === 'client' ? `Dry run: nothing was contacted; would apply v1 Secret ${r.namespace}/${r.name} (server-side, field manager enssib) with ${keys}` : `Secret ${r.namespace}/${r.name}: ${r.action}${r.dryRun ? ' (dry run)' : ''} — ${keys}`],
  );
  return ExitCode.ok;
}

export async function createSecret(ctx: Context, nameArg: unknown, fromFile: unknown, o: { namespace?: unknown; type?: unknown; forceConflicts?: boolean } = {}, deps: Pick<ServiceDeps, 'connect'> = {}): Promise<SecretReport> {
  const started = Date.now();
  const name = validateName('secret', nameArg, 253);
  if (o.namespace !== undefined) validateName('namespace', o.namespace);
  const type = o.type === undefined ? 'Opaque' : String(o.type);
  if (!/^[A-Za-z0-9][A-Za-z0-9./-]{0,252}$/.test(type)) throw new UsageError(`--type ${JSON.stringify(type.slice(0, 60))} is not a Secret type`, ['e.g. Opaque or kubernetes.io/tls']);
  const files = parseFromFiles(fromFile, ctx.cwd);
  if (type === 'kubernetes.io/tls' && !['tls.crt', 'tls.key'].every((k) => files.some((f) => f.key === k))) throw new UsageError('a kubernetes.io/tls Secret needs the keys tls.crt and tls.key');
  const keys = files.map((f) => ({ key: f.key, bytes: f.bytes }));
  /** The run report: one item, the Secret, with its key names only; journaled when real. */
  const run = (namespace: string, action: SecretReport['action']): RunReport => {
    const status = action === 'planned' ? 'planned' : action === 'would change' ? 'would-change' : action === 'unchanged' ? 'unchanged' : 'done';
    const report = taskReport({
      plan: `secret create ${name}`,
      mode: runMode(ctx),
      started,
      exitCode: ExitCode.ok,
      phases: [{ title: 'apply the Secret', items: [{ item: `Secret ${namespace}/${name}`, status, actions: [`apply v1 Secret ${namespace}/${name}: ${action} (keys: ${files.map((f) => f.key).join(', ')}; contents not recorded)`] }] }],
    });
    journalTaskRun(ctx, report);
    return report;
  };
  if (ctx.opts.dryRun === 'client') {
    const namespace = typeof o.namespace === 'string' ? o.namespace : ctx.inventory().data.kubernetes.namespace ?? 'default';
    return { name, namespace, keys, action: 'planned', dryRun: 'client', run: run(namespace, 'planned') };
  }
  const api = await (deps.connect ?? connect)(ctx, { changes: true });
  const namespace = typeof o.namespace === 'string' ? o.namespace : defaultNamespace(ctx, api);
  const data: Record<string, string> = {};
  for (const f of files) data[f.key] = readFileSync(f.path).toString('base64');
  const secret: KObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace, labels: { [MANAGED_BY]: 'enssib' } }, type, data };
  const ref = { apiVersion: 'v1', kind: 'Secret', name, namespace };
  const live = await api.get(ref);
  const r = await applyOwned(api, secret, { forceConflicts: o.forceConflicts === true, dryRun: ctx.opts.dryRun === 'server' });
  const same = live !== null && deepEqual(comparable(live), comparable(r.object));
  const action: SecretReport['action'] = ctx.opts.dryRun === 'server' ? (same ? 'unchanged' : 'would change') : !live ? 'created' : same ? 'unchanged' : 'configured';
  return { name, namespace, keys, action, dryRun: ctx.opts.dryRun, run: run(namespace, action) };
}
