import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { GlobalOptions } from '../../../src/context.js';
import { parseInventory } from '../../../src/inventory/load.js';
import { kubeconfigPath, loadKubeConfig } from '../../../src/k8s/config.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

const dir = mkdtempSync(join(tmpdir(), 'enssib-kc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const withKc = (kc: string | undefined, context?: string) =>
  parseInventory(
    VALID_INVENTORY.replace('kubernetes: { api: https://api.cluster.enssib.fr:6443 }', `kubernetes: { api: https://api.cluster.enssib.fr:6443${kc ? `, kubeconfig: ${kc}` : ''}${context ? `, context: ${context}` : ''} }`),
    join(dir, 'inventory.yaml'),
  );
const opts = (o: Partial<GlobalOptions> = {}): GlobalOptions => ({ dryRun: false, yes: false, output: 'text', concurrency: 10, color: false, verbose: false, ...o });

describe('kubeconfig precedence: --kubeconfig, KUBECONFIG, the inventory, ~/.kube/config', () => {
  const ctx = (o: Partial<GlobalOptions>, env: NodeJS.ProcessEnv, kc?: string) => {
    const inv = withKc(kc);
    return { opts: opts(o), env, cwd: '/work', inventory: () => inv };
  };
  it('--kubeconfig first, relative to the working directory', () => {
    expect(kubeconfigPath(ctx({ kubeconfig: 'a/kc' }, { KUBECONFIG: '/env/kc' }, 'inv-kc'))).toEqual({ path: '/work/a/kc', source: '--kubeconfig' });
  });
  it('then KUBECONFIG (its first entry)', () => {
    expect(kubeconfigPath(ctx({}, { KUBECONFIG: ':/env/kc:/other' }, 'inv-kc'))).toEqual({ path: '/env/kc', source: 'KUBECONFIG' });
  });
  it("then the inventory's kubernetes.kubeconfig, relative to the inventory", () => {
    expect(kubeconfigPath(ctx({}, {}, 'secrets/kc'))).toEqual({ path: join(dir, 'secrets/kc'), source: 'inventory kubernetes.kubeconfig' });
  });
  it('then ~/.kube/config', () => {
    expect(kubeconfigPath(ctx({}, { HOME: '/home/admin' }))).toEqual({ path: '/home/admin/.kube/config', source: '~/.kube/config' });
  });
});

describe('loadKubeConfig', () => {
  const file = join(dir, 'kc');
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{ name: a, cluster: { server: "https://a.example:6443" } }, { name: b, cluster: { server: "https://b.example:6443" } }]',
      'users: [{ name: u, user: { token: t } }]',
      'contexts: [{ name: one, context: { cluster: a, user: u } }, { name: two, context: { cluster: b, user: u, namespace: intranet } }]',
      'current-context: one',
      '',
    ].join('\n'),
  );
  it('--context picks the context (then the inventory’s context)', async () => {
    const inv = withKc(undefined, 'two');
    const base = { env: {}, cwd: dir };
    expect((await loadKubeConfig({ ...base, opts: opts({ kubeconfig: file }), inventory: () => withKc(undefined) })).getCurrentCluster()?.server).toBe('https://a.example:6443');
    expect((await loadKubeConfig({ ...base, opts: opts({ kubeconfig: file, context: 'two' }), inventory: () => withKc(undefined) })).getCurrentCluster()?.server).toBe('https://b.example:6443');
    expect((await loadKubeConfig({ ...base, opts: opts({ kubeconfig: file }), inventory: () => inv })).getCurrentContext()).toBe('two');
    await expect(loadKubeConfig({ ...base, opts: opts({ kubeconfig: file, context: 'prod' }), inventory: () => inv })).rejects.toThrow(/context "prod" is not in/);
    await expect(loadKubeConfig({ ...base, opts: opts({ kubeconfig: join(dir, 'missing') }), inventory: () => inv })).rejects.toThrow(/does not exist/);
  });
});
