import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { GlobalOptions } from '../../../src/context.js';
import { parseInventory } from '../../../src/inventory/load.js';
import { ConfigError } from '../../../src/errors.js';
import { kubeconfigPath, loadKubeConfig, serverKey } from '../../../src/k8s/config.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

const dir = mkdtempSync(join(tmpdir(), 'enssib-kc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const withKc = (kc: string | undefined, context?: string, api = 'https://api.cluster.enssib.fr:6443') =>
  parseInventory(
    VALID_INVENTORY.replace('kubernetes: { api: https://api.cluster.enssib.fr:6443 }', `kubernetes: { api: ${api}${kc ? `, kubeconfig: ${kc}` : ''}${context ? `, context: ${context}` : ''} }`),
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
  const base = { env: {}, cwd: dir };
  const onA = (context?: string) => withKc(undefined, context, 'https://a.example:6443');
  it('--context picks the context (then the inventory’s context)', async () => {
    const onB = withKc(undefined, 'two', 'https://b.example:6443');
    expect((await loadKubeConfig({ ...base, opts: opts({ kubeconfig: file }), inventory: () => onA() })).getCurrentCluster()?.server).toBe('https://a.example:6443');
    expect((await loadKubeConfig({ ...base, opts: opts({ kubeconfig: file, context: 'two' }), inventory: () => withKc(undefined, undefined, 'https://b.example:6443') })).getCurrentCluster()?.server).toBe('https://b.example:6443');
    expect((await loadKubeConfig({ ...base, opts: opts({ kubeconfig: file }), inventory: () => onB })).getCurrentContext()).toBe('two');
    await expect(loadKubeConfig({ ...base, opts: opts({ kubeconfig: file, context: 'prod' }), inventory: () => onB })).rejects.toThrow(/context "prod" is not in/);
    await expect(loadKubeConfig({ ...base, opts: opts({ kubeconfig: join(dir, 'missing') }), inventory: () => onB })).rejects.toThrow(/does not exist/);
  });

  it("refuses a context whose server is not the inventory's kubernetes.api, naming both", async () => {
    // --context on another cluster
    const e = await loadKubeConfig({ ...base, opts: opts({ kubeconfig: file, context: 'two' }), inventory: () => onA() }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).message).toBe(`the kubeconfig's context "two" points at https://b.example:6443, but the inventory's kubernetes.api is https://a.example:6443`);
    expect((e as ConfigError).details.join('\n')).toContain(`kubeconfig: ${file} (from --kubeconfig)`);
    // KUBECONFIG left on another cluster's file
    await expect(loadKubeConfig({ env: { KUBECONFIG: file }, cwd: dir, opts: opts(), inventory: () => withKc(undefined) })).rejects.toThrow(
      /context "one" points at https:\/\/a\.example:6443, but the inventory's kubernetes\.api is https:\/\/api\.cluster\.enssib\.fr:6443/,
    );
    // the inventory's context, pointing elsewhere than its api
    await expect(loadKubeConfig({ ...base, opts: opts({ kubeconfig: file }), inventory: () => onA('two') })).rejects.toThrow(/context "two" points at https:\/\/b\.example:6443/);
  });

  it('compares addresses, not spellings: case of the host, default port, trailing slash', () => {
    expect(serverKey('https://API.example:443/')).toBe(serverKey('https://api.example'));
    expect(serverKey('https://api.example:6443')).not.toBe(serverKey('https://api.example:6444'));
    expect(serverKey('http://api.example:6443')).not.toBe(serverKey('https://api.example:6443'));
    expect(serverKey('not a url')).toBeNull();
  });

  it('warns when the cluster turns TLS verification off', async () => {
    const insecure = join(dir, 'kc-insecure');
    writeFileSync(
      insecure,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{ name: a, cluster: { server: "https://a.example:6443", insecure-skip-tls-verify: true } }]',
        'users: [{ name: u, user: { token: t } }]',
        'contexts: [{ name: one, context: { cluster: a, user: u } }]',
        'current-context: one',
        '',
      ].join('\n'),
    );
    const warnings: string[] = [];
    await loadKubeConfig({ ...base, opts: opts({ kubeconfig: insecure }), inventory: () => onA(), out: { warn: (t) => warnings.push(t) } });
    expect(warnings).toEqual([expect.stringContaining('cluster "a" has insecure-skip-tls-verify')]);
    warnings.length = 0;
    await loadKubeConfig({ ...base, opts: opts({ kubeconfig: file }), inventory: () => onA(), out: { warn: (t) => warnings.push(t) } });
    expect(warnings).toEqual([]);
  });
});
