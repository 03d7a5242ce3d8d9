/**
 * `service diff`, `service status` and `service list` against the Kubernetes
 * STAND-IN API server, with a STAND-IN image resolver.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { standInSite } from '../../support/kube-stand-in/fixture.js';
import { siteContext, standInImages, writeService, type Site } from '../../support/kube-stand-in/harness.js';
import { deployServices } from '../../../src/services/deploy.js';
import { diffCommand, diffService } from '../../../src/services/diff.js';
import { listServicesState, serviceStatus } from '../../../src/services/status.js';
import { createKubeApi } from '../../../src/k8s/api.js';

const env = standInSite({ rolloutMs: 150 });

describe('service diff (stand-in)', () => {
  it('exit 4 for objects not yet in the cluster, exit 0 once deployed, 4 again after a change to the folder', async () => {
    writeService(env.site, 'papa', { policy: true });
    const images = standInImages(env.site);
    const first = await diffService(siteContext(env.site).ctx, 'papa', { images });
    expect(first.exitCode).toBe(4);
    expect(first.objects.map((o) => o.state)).toEqual(['new', 'new', 'new']);
    expect(images.calls[0]).toEqual({ services: ['papa'], build: false, push: false });
    // the dry runs changed nothing
    expect(env.standIn.object('apps/v1', 'Deployment', 'default', 'papa')).toBeUndefined();
    expect(env.standIn.requests.filter((q) => q.method === 'PATCH' && q.path.endsWith('/papa')).every((q) => q.query.dryRun === 'All')).toBe(true);

    await deployServices(siteContext(env.site).ctx, ['papa'], { build: false, rollbackOnFailure: false }, { images });
    const same = await diffService(siteContext(env.site).ctx, 'papa', { images });
    expect(same.exitCode).toBe(0);
    expect(same.objects.every((o) => o.state === 'unchanged' && o.diff === '')).toBe(true);

    writeService(env.site, 'papa', { policy: true, replicas: 3, port: 9090 });
    const { ctx, stdout } = siteContext(env.site);
    const code = await diffCommand(ctx, { args: ['papa'], opts: {} }, { images: standInImages(env.site) });
    expect(code).toBe(4);
    const out = stdout();
    expect(out).toContain('apps/v1 Deployment default/papa: would change');
    expect(out).toMatch(/^-\s+replicas: 1$/m);
    expect(out).toMatch(/^\+\s+replicas: 3$/m);
    expect(out).toMatch(/^\+\s+- containerPort: 9090$/m);
    // server bookkeeping never shows in the diff
    expect(out).not.toContain('managedFields');
    expect(out).not.toContain('resourceVersion');
  });

  it('shows the fields another manager owns that a deploy would take over (409 without force)', async () => {
    writeService(env.site, 'quebec');
    const images = standInImages(env.site);
    await deployServices(siteContext(env.site).ctx, ['quebec'], { build: false, rollbackOnFailure: false }, { images });
    // an HPA-like manager takes spec.replicas over
    const api = await createKubeApi(await siteContext(env.site).ctx.kube());
    await api.apply({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'quebec', namespace: 'default' }, spec: { replicas: 4 } }, { force: true, fieldManager: 'autoscaler' });
    const { ctx, stdout } = siteContext(env.site);
    const code = await diffCommand(ctx, { args: ['quebec'], opts: {} }, { images });
    expect(code).toBe(4);
    const r = await diffService(siteContext(env.site).ctx, 'quebec', { images });
    const d = r.objects.find((o) => o.ref.kind === 'Deployment');
    expect(d?.conflicts).toEqual([{ manager: 'autoscaler', field: 'spec.replicas', message: 'conflict with "autoscaler" using apps/v1' }]);
    expect(stdout()).toContain('! spec.replicas is managed by "autoscaler"; a deploy stops on it unless given --force-conflicts');
    expect(stdout()).toMatch(/^-\s+replicas: 4$/m);
    expect(env.standIn.requests.some((q) => q.method === 'PATCH' && q.path.endsWith('/deployments/quebec') && q.query.dryRun === 'All' && q.query.force === 'false')).toBe(true);
  });

  it('refuses a client dry run (it only reads the cluster)', async () => {
    writeService(env.site, 'romeo');
    await expect(diffService(siteContext(env.site, { dryRun: 'client' }).ctx, 'romeo', { images: standInImages(env.site) })).rejects.toThrow(/only reads the cluster/);
  });
});

describe('service status and list (stand-in)', () => {
  it('status: ready replicas, image running, rollout line, last apply, drift and orphans', async () => {
    writeService(env.site, 'sierra', { replicas: 2 });
    const images = standInImages(env.site);
    const r0 = await deployServices(siteContext(env.site).ctx, ['sierra'], { build: false, rollbackOnFailure: false }, { images });
    const s = await serviceStatus(siteContext(env.site).ctx, 'sierra', { images });
    const w = s.workloads[0];
    expect(w).toMatchObject({ desired: 2, ready: 2, updated: 2, available: 2, rolledOut: true, rollout: 'deployment "sierra" successfully rolled out' });
    expect(w?.images).toEqual([r0.services[0]?.images[0]?.reference]);
    expect(w?.lastApplied).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(s.objects.every((o) => o.present && o.drift === 'none')).toBe(true);
    expect(s.orphans).toEqual([]);

    // drift: someone scales it by hand; a leftover object with the service's label
    const api = await createKubeApi(await siteContext(env.site).ctx.kube());
    await api.apply({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'sierra', namespace: 'default' }, spec: { replicas: 5 } }, { force: true, fieldManager: 'kubectl-scale' });
    env.standIn.seed({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'sierra-old', namespace: 'default', labels: { 'app.kubernetes.io/name': 'sierra', 'app.kubernetes.io/managed-by': 'enssib' } },
      spec: { selector: { app: 'sierra' }, ports: [{ port: 81 }] },
    });
    const s2 = await serviceStatus(siteContext(env.site).ctx, 'sierra', { images });
    expect(s2.objects.find((o) => o.ref.kind === 'Deployment')).toMatchObject({ drift: 'changed', conflicts: [{ manager: 'kubectl-scale', field: 'spec.replicas' }] });
    expect(s2.orphans).toEqual([{ apiVersion: 'v1', kind: 'Service', name: 'sierra-old', namespace: 'default' }]);
  });

  it('status when the registry lacks the image: drift is judged without the image', async () => {
    writeService(env.site, 'tango');
    await deployServices(siteContext(env.site).ctx, ['tango'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    const noImage = async () => {
      throw new Error('tango: tag not in the registry');
    };
    const s = await serviceStatus(siteContext(env.site).ctx, 'tango', { images: noImage });
    expect(s.image.reference).toBeNull();
    expect(s.image.note).toContain('tag not in the registry');
    expect(s.objects.every((o) => o.drift === 'none')).toBe(true);
  });

  it('list: every folder with its state, and enssib services found only in the cluster', async () => {
    writeService(env.site, 'uniform');
    writeService(env.site, 'victor');
    writeService(env.site, 'whiskey', { deadline: 1 });
    env.standIn.controller.script('default', 'whiskey', { kind: 'imagePull' });
    mkdirBroken(env.site);
    const images = standInImages(env.site);
    await deployServices(siteContext(env.site).ctx, ['uniform', 'whiskey'], { build: false, rollbackOnFailure: false }, { images });
    env.standIn.seed({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'legacy', namespace: 'default', labels: { 'app.kubernetes.io/name': 'legacy', 'app.kubernetes.io/managed-by': 'enssib' } },
      spec: { replicas: 1, selector: { matchLabels: { app: 'legacy' } }, template: { metadata: { labels: { app: 'legacy' } }, spec: { containers: [{ name: 'legacy', image: '127.0.0.1:9/legacy@sha256:' + 'a'.repeat(64) }] } } },
    });
    const rows = await listServicesState(siteContext(env.site).ctx);
    const by = Object.fromEntries(rows.map((r) => [r.service, r]));
    expect(by.uniform).toMatchObject({ status: 'rolled out', ready: '1/1', objects: { inFolder: 2, inCluster: 2 } });
    expect(by.uniform?.image).toMatch(/^uniform@[0-9a-f]{12}$/);
    expect(by.victor).toMatchObject({ status: 'not deployed', objects: { inFolder: 2, inCluster: 0 } });
    expect(by.whiskey).toMatchObject({ status: 'failed', ready: '0/1' });
    expect(by.broken?.status).toBe('invalid folder');
    expect(by.broken?.note).toMatch(/deployment\.yaml:3:1: YAML syntax error/);
    expect(by.legacy).toMatchObject({ status: 'no folder', folder: false });
  });
});

function mkdirBroken(s: Site): void {
  writeService(s, 'broken');
  writeFileSync(join(s.services, 'broken', 'deployment.yaml'), 'apiVersion: apps/v1\nkind: [Deployment\nmetadata: {name: broken}\n');
}
