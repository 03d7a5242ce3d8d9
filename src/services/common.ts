import type { Context } from '../context.js';
import { UsageError } from '../errors.js';
import type { KubeApi } from '../k8s/api.js';
import { validateName } from '../validate.js';
import { listServices, servicesRoot } from '../site/folder.js';

/** What the service use cases get from outside; tests replace parts (a stand-in image resolver). */
export interface ServiceDeps {
  images?: import('./images.js').ImageResolver;
  connect?: (ctx: Context, o?: { changes?: boolean }) => Promise<KubeApi>;
}

/**
 * The API client for the kubeconfig the options and inventory name (client-node
 * is loaded here, lazily). Its server has been checked against the inventory's
 * kubernetes.api; a command that changes the cluster says first which one.
 */
export async function connect(ctx: Context, o: { changes?: boolean } = {}): Promise<KubeApi> {
  const [{ createKubeApi }, { kubeconfigPath, kubeTarget, targetLine }] = await Promise.all([import('../k8s/api.js'), import('../k8s/config.js')]);
  const kc = await ctx.kube();
  if (o.changes) ctx.out.note(targetLine(kubeTarget(ctx, kc)));
  const api = await createKubeApi(kc, { signal: ctx.signal, source: kubeconfigPath(ctx).path });
  // one discovery request first: an API server that is down or refuses the token is one clear error, before any work
  await api.resource('v1', 'Namespace');
  return api;
}

/** Namespace for objects that do not name one: the inventory's, then the kubeconfig context's, then "default". */
export function defaultNamespace(ctx: Context, api?: KubeApi): string {
  return ctx.inventory().data.kubernetes.namespace ?? api?.contextNamespace ?? 'default';
}

export function servicesDir(ctx: Context): string {
  return servicesRoot(ctx.inventory().root);
}

/** The services a command works on: the names given (validated), or every folder with --all. */
export function chosenServices(ctx: Context, args: unknown, all: boolean): string[] {
  const given = (Array.isArray(args) ? args : args === undefined ? [] : [args]).map(String);
  if (all && given.length > 0) throw new UsageError('give service names or --all, not both');
  if (!all && given.length === 0) throw new UsageError('which services? Give their names, or --all', ['e.g. enssib service deploy ldap mail']);
  for (const n of given) validateName('service', n);
  if (all) {
    const found = listServices(servicesDir(ctx));
    if (found.length === 0) throw new UsageError(`no service folders under ${servicesDir(ctx)}`);
    return found;
  }
  return [...new Set(given)];
}

/** --timeout <seconds>: a whole number of seconds from 1 to 86400. */
export function parseTimeout(v: unknown): number | undefined {
  if (v === undefined || v === null || v === false) return undefined;
  const s = String(v);
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 86_400) throw new UsageError(`--timeout ${JSON.stringify(s.slice(0, 40))}: expected a whole number of seconds from 1 to 86400`);
  return Number(s);
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
