import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Context } from '../context.js';
import { ConfigError } from '../errors.js';
import type { Output } from '../ui/output.js';

/** Where the kubeconfig comes from: --kubeconfig, then KUBECONFIG, then the inventory, then ~/.kube/config. */
export function kubeconfigPath(ctx: Pick<Context, 'opts' | 'env' | 'cwd' | 'inventory'>): { path: string; source: string } {
  if (ctx.opts.kubeconfig) return { path: resolve(ctx.cwd, ctx.opts.kubeconfig), source: '--kubeconfig' };
  const env = ctx.env.KUBECONFIG?.split(':').find((p) => p !== '');
  if (env) return { path: resolve(ctx.cwd, env), source: 'KUBECONFIG' };
  const fromInv = ctx.inventory().data.kubernetes.kubeconfig;
  if (fromInv) return { path: ctx.inventory().path(fromInv), source: 'inventory kubernetes.kubeconfig' };
  return { path: join(ctx.env.HOME ?? homedir(), '.kube', 'config'), source: '~/.kube/config' };
}

/** The API server address as a comparable string: scheme, host in lower case, port (defaulted), path without a trailing slash. */
export function serverKey(server: string): string | null {
  try {
    const u = new URL(server);
    const port = u.port || (u.protocol === 'https:' ? '443' : u.protocol === 'http:' ? '80' : '');
    return `${u.protocol}//${u.hostname.toLowerCase()}:${port}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return null;
  }
}

/** The cluster a command works on, for the line every command that changes it prints first. */
export interface KubeTarget {
  server: string;
  context: string;
  kubeconfig: string;
  source: string;
}

export function targetLine(t: KubeTarget): string {
  return `cluster ${t.server} (context "${t.context}", kubeconfig ${t.kubeconfig} from ${t.source})`;
}

/**
 * Loads the kubeconfig (--kubeconfig, KUBECONFIG, the inventory, ~/.kube/config),
 * picks the context (--context, then the inventory's) and refuses when its
 * server is not the inventory's kubernetes.api: a KUBECONFIG or a current
 * context left on another cluster must never receive this site's changes.
 * Warns when the cluster entry turns TLS verification off.
 */
export async function loadKubeConfig(ctx: Pick<Context, 'opts' | 'env' | 'cwd' | 'inventory'> & { out?: Pick<Output, 'warn'> }): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const { path, source } = kubeconfigPath(ctx);
  if (!existsSync(path)) throw new ConfigError(`kubeconfig ${path} (from ${source}) does not exist`, ['Give one with --kubeconfig PATH, KUBECONFIG, or kubernetes.kubeconfig in the inventory.']);
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(path);
  } catch (e) {
    throw new ConfigError(`kubeconfig ${path} (from ${source}) cannot be read: ${(e as Error).message}`);
  }
  const wanted = ctx.opts.context ?? ctx.inventory().data.kubernetes.context;
  if (wanted) {
    if (!kc.getContexts().some((c) => c.name === wanted)) {
      throw new ConfigError(`context "${wanted}" is not in ${path}`, [`Contexts there: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'}`]);
    }
    kc.setCurrentContext(wanted);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new ConfigError(`kubeconfig ${path} has no current cluster`);
  const inv = ctx.inventory();
  const api = inv.data.kubernetes.api;
  if (serverKey(cluster.server) !== serverKey(api)) {
    throw new ConfigError(`the kubeconfig's context "${kc.getCurrentContext()}" points at ${cluster.server}, but the inventory's kubernetes.api is ${api}`, [
      `kubeconfig: ${path} (from ${source})`,
      `inventory: ${inv.file}`,
      'Nothing was changed. Choose the context of this site (--context, or kubernetes.context in the inventory) or its kubeconfig (--kubeconfig, KUBECONFIG), or correct kubernetes.api.',
    ]);
  }
  if (cluster.skipTLSVerify) {
    ctx.out?.warn(`kubeconfig ${path}: cluster "${cluster.name}" has insecure-skip-tls-verify: the API server's identity is not checked, and whoever answers at ${cluster.server} receives the credentials. Give the cluster its certificate-authority instead.`);
  }
  return kc;
}

/** Which cluster, context and kubeconfig a loaded kubeconfig stands for. */
export function kubeTarget(ctx: Pick<Context, 'opts' | 'env' | 'cwd' | 'inventory'>, kc: KubeConfig): KubeTarget {
  const { path, source } = kubeconfigPath(ctx);
  return { server: kc.getCurrentCluster()?.server ?? '?', context: kc.getCurrentContext(), kubeconfig: path, source };
}
