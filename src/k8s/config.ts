import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Context } from '../context.js';
import { ConfigError } from '../errors.js';

/** Where the kubeconfig comes from: --kubeconfig, then KUBECONFIG, then the inventory, then ~/.kube/config. */
export function kubeconfigPath(ctx: Pick<Context, 'opts' | 'env' | 'cwd' | 'inventory'>): { path: string; source: string } {
  if (ctx.opts.kubeconfig) return { path: resolve(ctx.cwd, ctx.opts.kubeconfig), source: '--kubeconfig' };
  const env = ctx.env.KUBECONFIG?.split(':').find((p) => p !== '');
  if (env) return { path: resolve(ctx.cwd, env), source: 'KUBECONFIG' };
  const fromInv = ctx.inventory().data.kubernetes.kubeconfig;
  if (fromInv) return { path: ctx.inventory().path(fromInv), source: 'inventory kubernetes.kubeconfig' };
  return { path: join(ctx.env.HOME ?? homedir(), '.kube', 'config'), source: '~/.kube/config' };
}

export async function loadKubeConfig(ctx: Pick<Context, 'opts' | 'env' | 'cwd' | 'inventory'>): Promise<KubeConfig> {
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
  if (!kc.getCurrentCluster()) throw new ConfigError(`kubeconfig ${path} has no current cluster`);
  return kc;
}
