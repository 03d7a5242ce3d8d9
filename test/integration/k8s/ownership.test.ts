/**
 * Whose cluster, whose fields: against the Kubernetes STAND-IN API server
 * (managedFields per manager, 409 on a conflict without force).
 * - the kubeconfig's server must be the inventory's kubernetes.api, and the
 *   commands that change the cluster name it first;
 * - server-side apply never forces: another manager's spec.replicas stops a
 *   deploy (fields and managers named) unless --force-conflicts; under an
 *   HorizontalPodAutoscaler, replicas is not applied at all;
 * - no advice to turn TLS verification off.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { standInSite } from '../../support/kube-stand-in/fixture.js';
import { inventoryText, siteContext, standInImages, writeService } from '../../support/kube-stand-in/harness.js';
import { ConfigError, OperationError } from '../../../src/errors.js';
import { createKubeApi } from '../../../src/k8s/api.js';
import { deployCommand, deployServices } from '../../../src/services/deploy.js';
import { exposeService } from '../../../src/services/expose.js';
import { createSecret } from '../../../src/services/secret.js';
import type { Obj } from '../../support/kube-stand-in/fields.js';

const env = standInSite({ rolloutMs: 100 });

const replicas = (name: string) => ((env.standIn.object('apps/v1', 'Deployment', 'default', name) as Obj).spec as Obj).replicas;
const managersOf = (o: Obj | undefined) => (((o?.metadata as Obj).managedFields as Obj[]) ?? []).map((m) => String(m.manager));
const deploy = (name: string, forceConflicts = false) => {
  const c = siteContext(env.site);
  return { c, run: deployServices(c.ctx, [name], { build: false, rollbackOnFailure: false, forceConflicts }, { images: standInImages(env.site) }) };
};

/** Another field manager (an autoscaler, kubectl scale) sets spec.replicas and owns it. */
async function scaleAsOtherManager(name: string, n: number, manager = 'autoscaler'): Promise<void> {
  const api = await createKubeApi(await siteContext(env.site).ctx.kube());
  await api.apply({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: 'default' }, spec: { replicas: n } }, { force: true, fieldManager: manager });
}

describe('the cluster the inventory names (stand-in)', () => {
  it("refuses a kubeconfig whose server is not the inventory's kubernetes.api, naming both, before any request", async () => {
    writeService(env.site, 'alpha');
    writeFileSync(env.site.inventory, inventoryText({ api: 'https://api.cluster.enssib.fr:6443', kubeconfig: 'kubeconfig' }));
    const before = env.standIn.requests.length;
    const e = await deployServices(siteContext(env.site).ctx, ['alpha'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toBe(`the kubeconfig's context "stand-in" points at ${env.standIn.url}, but the inventory's kubernetes.api is https://api.cluster.enssib.fr:6443`);
    await expect(createSecret(siteContext(env.site).ctx, 'pw', [env.site.inventory])).rejects.toThrow(/points at .* but the inventory's kubernetes.api is/);
    expect(env.standIn.requests.length).toBe(before);
  });

  it('deploy, expose and secret create name the cluster and context first (stderr)', async () => {
    writeService(env.site, 'bravo');
    const line = `cluster ${env.standIn.url} (context "stand-in", kubeconfig ${env.site.kubeconfig} from inventory kubernetes.kubeconfig)`;
    const d = siteContext(env.site);
    expect(await deployCommand(d.ctx, { args: [['bravo']], opts: {} }, { images: standInImages(env.site) })).toBe(0);
    const notes = d.stderr().split('\n').filter((l) => !l.startsWith('warning:'));
    expect(notes[0]).toBe(line);
    const x = siteContext(env.site);
    await exposeService(x.ctx, 'bravo', '192.168.66.50');
    expect(x.stderr()).toContain(line);
    const s = siteContext(env.site);
    await createSecret(s.ctx, 'pw', [env.site.inventory]);
    expect(s.stderr()).toContain(line);
  });

  it('warns about insecure-skip-tls-verify and never suggests it', async () => {
    writeService(env.site, 'bravo');
    const w = siteContext(env.site);
    await w.ctx.kube();
    expect(w.stderr()).toContain(`kubeconfig ${env.site.kubeconfig}: cluster "stand-in" has insecure-skip-tls-verify`);
    // a plain-HTTP server without the flag: refused, with advice that keeps TLS
    writeFileSync(
      env.site.kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'plain', cluster: { server: env.standIn.url } }],
        users: [{ name: 'u', user: { token: 'x' } }],
        contexts: [{ name: 'plain', context: { cluster: 'plain', user: 'u' } }],
        'current-context': 'plain',
      }),
    );
    const e = await deployServices(siteContext(env.site).ctx, ['bravo'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    const text = [(e as ConfigError).message, ...(e as ConfigError).details].join('\n');
    expect(text).toContain('plain HTTP');
    expect(text).toContain('https://');
    expect(text).not.toMatch(/insecure-skip-tls-verify/);
  });
});

describe('server-side apply without force (stand-in)', () => {
  it('stops on spec.replicas owned by another manager, naming field and manager; --force-conflicts takes it over', async () => {
    writeService(env.site, 'charlie', { replicas: 2 });
    expect((await deploy('charlie').run).exitCode).toBe(0);
    await scaleAsOtherManager('charlie', 5);
    const { c, run } = deploy('charlie');
    const r = await run;
    expect(r.exitCode).toBe(1);
    const s = r.services[0];
    expect(s?.status).toBe('failed');
    expect(s?.error?.message).toMatch(/^applying Deployment default\/charlie: Apply failed with 1 conflict/);
    expect(s?.error?.details).toEqual(['spec.replicas is managed by "autoscaler"', expect.stringContaining('run again with --force-conflicts')]);
    expect(c.stdout()).toContain('spec.replicas is managed by "autoscaler"');
    expect(replicas('charlie')).toBe(5);
    const applies = env.standIn.requests.filter((q) => q.method === 'PATCH' && q.contentType === 'application/apply-patch+yaml' && q.query.fieldManager === 'enssib');
    expect(applies.length).toBeGreaterThan(0);
    expect(applies.every((q) => q.query.force === 'false')).toBe(true);

    // the user decides: the repository wins
    const forced = await deploy('charlie', true).run;
    expect(forced.exitCode).toBe(0);
    expect(replicas('charlie')).toBe(2);
    expect(env.standIn.requests.some((q) => q.method === 'PATCH' && q.path.endsWith('/deployments/charlie') && q.query.force === 'true')).toBe(true);
  });

  it('the server dry run shows the conflict instead of hiding it', async () => {
    writeService(env.site, 'delta');
    expect((await deploy('delta').run).exitCode).toBe(0);
    await scaleAsOtherManager('delta', 3, 'kubectl-scale');
    const { ctx } = siteContext(env.site, { dryRun: 'server' });
    const r = await deployServices(ctx, ['delta'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    expect(r.services[0]?.status).toBe('failed');
    expect(r.services[0]?.error?.details[0]).toBe('spec.replicas is managed by "kubectl-scale"');
    expect(replicas('delta')).toBe(3);
  });

  it('leaves spec.replicas to an HorizontalPodAutoscaler: in the folder, or only in the cluster', async () => {
    const hpa = (name: string) => ({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name, namespace: 'default' },
      spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name }, minReplicas: 2, maxReplicas: 8 },
    });
    // the HPA is one of the service's manifests
    const dir = writeService(env.site, 'echo', { replicas: 1 });
    writeFileSync(join(dir, 'hpa.yaml'), stringify(hpa('echo')));
    expect((await deploy('echo').run).exitCode).toBe(0);
    await scaleAsOtherManager('echo', 6, 'horizontal-pod-autoscaler');
    const { c, run } = deploy('echo');
    expect((await run).exitCode).toBe(0);
    expect(replicas('echo')).toBe(6);
    expect(c.stderr()).toContain('apps/v1 Deployment default/echo: not applied: spec.replicas (scaled by an HorizontalPodAutoscaler)');
    const d = env.standIn.object('apps/v1', 'Deployment', 'default', 'echo') as Obj;
    expect(managersOf(d)).toEqual(expect.arrayContaining(['enssib', 'horizontal-pod-autoscaler']));

    // the HPA exists only in the cluster (made by someone else)
    writeService(env.site, 'foxtrot', { replicas: 1 });
    expect((await deploy('foxtrot').run).exitCode).toBe(0);
    env.standIn.seed(hpa('foxtrot'));
    await scaleAsOtherManager('foxtrot', 4, 'horizontal-pod-autoscaler');
    expect((await deploy('foxtrot').run).exitCode).toBe(0);
    expect(replicas('foxtrot')).toBe(4);
  });

  it('expose and secret create stop on a field another manager owns, unless --force-conflicts', async () => {
    writeService(env.site, 'golf');
    env.standIn.seed({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'vip-configmap', namespace: 'kube-system' }, data: { '192.168.66.60': 'default/radius' } });
    await expect(exposeService(siteContext(env.site).ctx, 'golf', '192.168.66.60')).rejects.toThrow(/conflict/);
    const e = (await exposeService(siteContext(env.site).ctx, 'golf', '192.168.66.60').catch((x: unknown) => x)) as OperationError;
    expect(e.details[0]).toBe('data.192.168.66.60 is managed by "stand-in-setup"');
    expect((env.standIn.object('v1', 'ConfigMap', 'kube-system', 'vip-configmap') as Obj).data).toEqual({ '192.168.66.60': 'default/radius' });
    const r = await exposeService(siteContext(env.site).ctx, 'golf', '192.168.66.60', {}, { forceConflicts: true });
    expect(r.entries).toEqual(['default/radius', 'default/golf']);

    writeFileSync(join(env.site.dir, 'pw'), 'one\n');
    env.standIn.seed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'default' }, type: 'Opaque', data: { pw: Buffer.from('zero').toString('base64') } });
    await expect(createSecret(siteContext(env.site).ctx, 'db', ['pw'])).rejects.toThrow(/data\.pw is managed by "stand-in-setup"|conflict/);
    expect((await createSecret(siteContext(env.site).ctx, 'db', ['pw'], { forceConflicts: true })).action).toBe('configured');
  });
});
