/**
 * `enssib service deploy` against the Kubernetes STAND-IN API server
 * (test/support/kube-stand-in: real wire protocol, scripted deployment
 * controller) with the real @kubernetes/client-node over HTTP, and a STAND-IN
 * image resolver instead of Docker and a registry.
 */
import { describe, expect, it } from 'vitest';
import { standInSite } from '../../support/kube-stand-in/fixture.js';
import { journalLines, makeSite, siteContext, standInImages, writeService, REGISTRY } from '../../support/kube-stand-in/harness.js';
import { deployServices } from '../../../src/services/deploy.js';
import type { Obj } from '../../support/kube-stand-in/fields.js';

const env = standInSite({ rolloutMs: 300 });

function deployment(name: string, ns = 'default'): Obj {
  const d = env.standIn.object('apps/v1', 'Deployment', ns, name);
  if (!d) throw new Error(`no deployment ${ns}/${name} in the stand-in`);
  return d;
}

describe('service deploy (Kubernetes stand-in)', () => {
  it('applies Service, Calico policy and Deployment server-side, pins the image, labels only the objects, and waits for the rollout', async () => {
    writeService(env.site, 'alpha', { policy: true });
    const images = standInImages(env.site);
    const { ctx, stdout, stderr } = siteContext(env.site);
    const r = await deployServices(ctx, ['alpha'], { build: true, rollbackOnFailure: false }, { images });
    expect(r.exitCode, stderr()).toBe(0);
    expect(images.calls).toEqual([{ services: ['alpha'], build: true, push: true }]);
    const s = r.services[0];
    expect(s?.status).toBe('deployed');
    expect(s?.objects.map((o) => `${o.ref.kind}/${o.ref.namespace}/${o.ref.name}:${o.action}`)).toEqual([
      'Service/default/alpha:created',
      'NetworkPolicy/default/alpha:created',
      'Deployment/default/alpha:created',
    ]);
    expect(s?.rollouts[0]?.message).toBe('deployment "alpha" successfully rolled out');

    const d = deployment('alpha');
    const md = d.metadata as Obj;
    expect(md.labels).toEqual({ 'app.kubernetes.io/name': 'alpha', 'app.kubernetes.io/managed-by': 'enssib' });
    // never the selector nor the pod template
    expect((d.spec as Obj).selector).toEqual({ matchLabels: { app: 'alpha' } });
    expect((((d.spec as Obj).template as Obj).metadata as Obj).labels).toEqual({ app: 'alpha' });
    const image = ((((d.spec as Obj).template as Obj).spec as Obj).containers as Obj[])[0]?.image as string;
    expect(image).toMatch(new RegExp(`^${REGISTRY.replace(/\./g, '\\.')}/alpha@sha256:[0-9a-f]{64}$`));
    const managers = (md.managedFields as Obj[]).map((m) => `${String(m.manager)}/${String(m.operation)}`);
    expect(managers).toContain('enssib/Apply');
    // the Calico custom resource went through discovery of crd.projectcalico.org/v1
    expect(env.standIn.requests.some((q) => q.path === '/apis/crd.projectcalico.org/v1')).toBe(true);
    expect(env.standIn.requests.some((q) => q.method === 'PATCH' && q.path === '/apis/crd.projectcalico.org/v1/namespaces/default/networkpolicies/alpha' && q.contentType === 'application/apply-patch+yaml' && q.query.fieldManager === 'enssib' && q.query.force === 'false')).toBe(true);

    expect(stdout()).toContain('alpha: deployed');
    expect(stderr()).toContain('alpha: Waiting for deployment "alpha" rollout to finish');
    const j = journalLines(env.site).at(-1) as { exitCode: number; phases: { hosts: { host: string; status: string; actions: string[] }[] }[] };
    expect(j.exitCode).toBe(0);
    expect(j.phases[0]?.hosts[0]?.actions).toContain('apply apps/v1 Deployment default/alpha: created');
  });

  it('follows the rollout through one watch, not by polling, and notices completion at once', async () => {
    writeService(env.site, 'bravo');
    env.standIn.controller.script('default', 'bravo', { kind: 'succeed', afterMs: 1500 });
    const before = env.standIn.requests.length;
    const { ctx } = siteContext(env.site);
    const r = await deployServices(ctx, ['bravo'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    const noticed = performance.now();
    expect(r.exitCode).toBe(0);
    const mine = env.standIn.requests.slice(before).filter((q) => q.path.includes('/deployments'));
    const watches = mine.filter((q) => q.watch);
    const gets = mine.filter((q) => q.method === 'GET' && !q.watch);
    expect(watches).toHaveLength(1);
    expect(watches[0]?.query.fieldSelector).toBe('metadata.name=bravo');
    expect(watches[0]?.query.resourceVersion).toMatch(/^\d+$/);
    // one read before the apply (to know the previous version); none while waiting 1.5 s
    expect(gets.length).toBeLessThanOrEqual(1);
    const completed = env.standIn.controller.completedAt.get('default/bravo') as number;
    expect(noticed - completed).toBeLessThan(1000);
  });

  it('a second deploy of the same folder changes nothing and finishes at once', async () => {
    writeService(env.site, 'charlie');
    const images = standInImages(env.site);
    await deployServices(siteContext(env.site).ctx, ['charlie'], { build: true, rollbackOnFailure: false }, { images });
    const rv = (deployment('charlie').metadata as Obj).resourceVersion;
    const r = await deployServices(siteContext(env.site).ctx, ['charlie'], { build: true, rollbackOnFailure: false }, { images });
    expect(r.exitCode).toBe(0);
    expect(r.services[0]?.objects.map((o) => o.action)).toEqual(['unchanged', 'unchanged']);
    expect((deployment('charlie').metadata as Obj).resourceVersion).toBe(rv);
    expect(r.services[0]?.rollouts[0]?.durationMs).toBeLessThan(500);
  });

  it('deploys several services in parallel', async () => {
    for (const n of ['p1', 'p2', 'p3', 'p4']) {
      writeService(env.site, n);
      env.standIn.controller.script('default', n, { kind: 'succeed', afterMs: 1500 });
    }
    const t = performance.now();
    const { ctx } = siteContext(env.site);
    const r = await deployServices(ctx, ['p1', 'p2', 'p3', 'p4'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    expect(r.exitCode).toBe(0);
    // one after the other would take over 6 s
    expect(performance.now() - t).toBeLessThan(4000);
  });

  it('ImagePullBackOff: fails at the progress deadline, naming the image and the registry error', async () => {
    writeService(env.site, 'delta', { deadline: 1 });
    env.standIn.controller.script('default', 'delta', { kind: 'imagePull' });
    const { ctx, stdout } = siteContext(env.site);
    const r = await deployServices(ctx, ['delta'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    expect(r.exitCode).toBe(1);
    const s = r.services[0];
    expect(s?.rollouts[0]?.message).toBe('deployment "delta" exceeded its progress deadline');
    expect(s?.rollouts[0]?.outcome).toBe('failed');
    const f = s?.findings.find((x) => x.kind === 'image-pull');
    expect(f?.message).toMatch(new RegExp(`container "delta" cannot pull its image ${REGISTRY.replace(/\./g, '\\.')}/delta@sha256:[0-9a-f]{64} \\(ImagePullBackOff\\)`));
    expect(f?.details.join('\n')).toContain('Failed to pull image');
    expect(stdout()).toContain('cannot pull its image');
    expect(stdout()).toContain('--rollback-on-failure');
  });

  it('CrashLoopBackOff: the exit code and the last log lines', async () => {
    writeService(env.site, 'echo', { deadline: 1 });
    env.standIn.controller.script('default', 'echo', { kind: 'crashLoop', exitCode: 127, logs: ['starting echo', 'exec: /usr/sbin/echod: not found'] });
    const { ctx, stdout } = siteContext(env.site);
    const r = await deployServices(ctx, ['echo'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    expect(r.exitCode).toBe(1);
    const f = r.services[0]?.findings.find((x) => x.kind === 'crash-loop');
    expect(f?.message).toContain('keeps crashing (CrashLoopBackOff, restarted 4 times): last exit code 127, the command was not found in the image');
    expect(f?.details).toEqual(['last log lines:', '  starting echo', '  exec: /usr/sbin/echod: not found']);
    expect(stdout()).toContain('exec: /usr/sbin/echod: not found');
    // the logs came from the previous (crashed) container through the pods/log endpoint
    expect(env.standIn.requests.some((q) => q.path.endsWith('/log') && q.query.previous === 'true' && q.query.container === 'echo')).toBe(true);
  });

  it('FailedScheduling: the scheduler event message', async () => {
    writeService(env.site, 'foxtrot', { deadline: 1 });
    env.standIn.controller.script('default', 'foxtrot', { kind: 'unschedulable', message: '0/3 nodes are available: 3 Insufficient memory.' });
    const { ctx } = siteContext(env.site);
    const r = await deployServices(ctx, ['foxtrot'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    expect(r.exitCode).toBe(1);
    const f = r.services[0]?.findings.find((x) => x.kind === 'unschedulable');
    expect(f?.message).toBe('no node can run the pod: 0/3 nodes are available: 3 Insufficient memory.');
  });

  it('a missing Secret is named, with the command that creates it; once created, the deploy succeeds', async () => {
    writeService(env.site, 'golf', { deadline: 1, secretVolume: 'cert-golf' });
    const { ctx } = siteContext(env.site);
    const r = await deployServices(ctx, ['golf'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    expect(r.exitCode).toBe(1);
    const f = r.services[0]?.findings.find((x) => x.kind === 'missing-secret');
    expect(f?.message).toBe('Secret "cert-golf" does not exist in namespace default (volume "certificate"): the pods cannot start without it');
    expect(f?.details[0]).toContain('enssib secret create cert-golf --from-file');
    env.standIn.seed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cert-golf', namespace: 'default' }, data: { 'tls.crt': 'eA==' } });
    // the kubelet retries the mount: the pods start (until then the status still says ProgressDeadlineExceeded, as kubectl would report)
    while (!env.standIn.controller.completedAt.has('default/golf')) await new Promise((r) => setTimeout(r, 20));
    const again = await deployServices(siteContext(env.site).ctx, ['golf'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    expect(again.exitCode).toBe(0);
    expect(again.services[0]?.rollouts[0]?.message).toBe('deployment "golf" successfully rolled out');
  });

  it('--rollback-on-failure puts back the previous pod template and waits for it', async () => {
    writeService(env.site, 'hotel', { deadline: 1 });
    let version = 'good';
    const images = standInImages(env.site, () => version);
    const first = await deployServices(siteContext(env.site).ctx, ['hotel'], { build: true, rollbackOnFailure: false }, { images });
    expect(first.exitCode).toBe(0);
    const goodImage = first.services[0]?.images[0]?.reference as string;
    env.standIn.controller.script('default', 'hotel', (d) => {
      const img = (((((d.spec as Obj).template as Obj).spec as Obj).containers as Obj[])[0]?.image ?? '') as string;
      return img === goodImage ? { kind: 'succeed', afterMs: 200 } : { kind: 'crashLoop', exitCode: 1, logs: ['panic: bad config'] };
    });
    version = 'bad';
    const { ctx, stdout } = siteContext(env.site);
    const r = await deployServices(ctx, ['hotel'], { build: true, rollbackOnFailure: true }, { images });
    expect(r.exitCode).toBe(1);
    const s = r.services[0];
    expect(s?.findings.some((f) => f.kind === 'crash-loop')).toBe(true);
    expect(s?.rollbacks[0]?.ok).toBe(true);
    expect(s?.rollbacks[0]?.message).toBe('rolled back: deployment "hotel" successfully rolled out');
    const d = deployment('hotel');
    expect(((((d.spec as Obj).template as Obj).spec as Obj).containers as Obj[])[0]?.image).toBe(goodImage);
    expect(((d.metadata as Obj).managedFields as Obj[]).some((m) => m.manager === 'enssib-rollback' && m.operation === 'Update')).toBe(true);
    expect(env.standIn.requests.some((q) => q.method === 'PATCH' && q.contentType === 'application/json-patch+json' && q.path.endsWith('/deployments/hotel'))).toBe(true);
    expect(stdout()).toContain('rolled back: deployment "hotel" successfully rolled out');
  });

  it('--rollback-on-failure on a first deploy says there is nothing to roll back to', async () => {
    writeService(env.site, 'india', { deadline: 1 });
    env.standIn.controller.script('default', 'india', { kind: 'imagePull' });
    const r = await deployServices(siteContext(env.site).ctx, ['india'], { build: false, rollbackOnFailure: true }, { images: standInImages(env.site) });
    expect(r.exitCode).toBe(1);
    expect(r.services[0]?.rollbacks[0]).toMatchObject({ ok: false, message: 'nothing to roll back to: deployment "india" did not exist before this deploy' });
  });

  it('a rollout that never progresses (no controller) fails at --timeout, saying the controller has not seen it', async () => {
    writeService(env.site, 'juliet');
    env.standIn.controller.script('default', 'juliet', { kind: 'stuck' });
    const t = performance.now();
    const r = await deployServices(siteContext(env.site).ctx, ['juliet'], { build: false, timeoutS: 1, rollbackOnFailure: false }, { images: standInImages(env.site) });
    expect(r.exitCode).toBe(1);
    const ro = r.services[0]?.rollouts[0];
    expect(ro?.outcome).toBe('timeout');
    expect(ro?.message).toBe('deployment "juliet" did not finish rolling out within 1 s (--timeout)');
    expect(ro?.details).toContain('last status: Waiting for deployment spec update to be observed...');
    expect(ro?.details.join('\n')).toContain('is kube-controller-manager running?');
    expect(performance.now() - t).toBeLessThan(4000);
    // the watch it gave up on is closed, not left open
    await new Promise((res) => setTimeout(res, 100));
    expect(env.standIn.dropWatches()).toBe(0);
  });

  it('without --timeout, a rollout with no progress fails after its progressDeadlineSeconds', async () => {
    writeService(env.site, 'kilo', { deadline: 1 });
    env.standIn.controller.script('default', 'kilo', { kind: 'stuck' });
    const r = await deployServices(siteContext(env.site).ctx, ['kilo'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    expect(r.exitCode).toBe(1);
    expect(r.services[0]?.rollouts[0]?.outcome).toBe('no-progress');
    expect(r.services[0]?.rollouts[0]?.message).toBe('deployment "kilo" made no progress for 1 s (its progressDeadlineSeconds)');
  });

  it('one service failing among several is a partial failure (exit 3)', async () => {
    writeService(env.site, 'lima');
    writeService(env.site, 'mike', { deadline: 1 });
    env.standIn.controller.script('default', 'mike', { kind: 'imagePull' });
    const r = await deployServices(siteContext(env.site).ctx, ['lima', 'mike'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    expect(r.exitCode).toBe(3);
    expect(r.services.map((s) => s.status)).toEqual(['deployed', 'failed']);
  });

  it('resumes the watch from its resourceVersion when the server closes it, and re-reads after 410 Expired', async () => {
    writeService(env.site, 'papa');
    env.standIn.controller.script('default', 'papa', { kind: 'succeed', afterMs: 3000 });
    const before = env.standIn.requests.length;
    const watchesSoFar = () => env.standIn.requests.slice(before).filter((q) => q.watch && q.path.endsWith('/deployments'));
    const until = async (cond: () => boolean) => {
      while (!cond()) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 50));
    };
    const p = deployServices(siteContext(env.site).ctx, ['papa'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    await until(() => watchesSoFar().length === 1);
    expect(env.standIn.dropWatches()).toBe(1); // the server ends the stream: resume from the last version
    await until(() => watchesSoFar().length === 2);
    env.standIn.seed({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'unrelated', namespace: 'default' }, data: { n: String(Date.now()) } });
    env.standIn.store.compact(); // the version enssib watched from is gone now
    expect(env.standIn.dropWatches()).toBe(1);
    const r = await p;
    expect(r.exitCode).toBe(0);
    const watches = watchesSoFar();
    // the first; resumed after the first close; resumed after the second close (answered 410); after the re-read
    expect(watches.length).toBe(4);
    expect(watches.every((w) => /^\d+$/.test(w.query.resourceVersion ?? ''))).toBe(true);
    // after the 410, one fresh LIST of that object (for a current resourceVersion)
    expect(env.standIn.requests.slice(before).filter((q) => q.method === 'GET' && !q.watch && q.path.endsWith('/deployments') && q.query.fieldSelector === 'metadata.name=papa').length).toBe(1);
  });

  it('--dry-run=server: a server-side dry-run apply of each object shown as a diff; nothing changes', async () => {
    writeService(env.site, 'quebec');
    await deployServices(siteContext(env.site).ctx, ['quebec'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    writeService(env.site, 'quebec', { replicas: 2 });
    const { ctx, stdout } = siteContext(env.site, { dryRun: 'server' });
    const r = await deployServices(ctx, ['quebec'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    expect(r.exitCode).toBe(0);
    expect(r.services[0]?.objects.map((o) => o.action)).toEqual(['unchanged', 'would change']);
    expect(stdout()).toMatch(/^\s+\+\s+replicas: 2$/m);
    expect((deployment('quebec').spec as Obj).replicas).toBe(1);
  });

  it('a client dry run contacts nothing and calls the image resolver in dry-run mode', async () => {
    writeService(env.site, 'romeo', { policy: true });
    const before = env.standIn.requests.length;
    const images = standInImages(env.site);
    const { ctx, stdout } = siteContext(env.site, { dryRun: 'client', output: 'json' });
    const r = await deployServices(ctx, ['romeo'], { build: true, rollbackOnFailure: false }, { images });
    expect(r.exitCode).toBe(0);
    expect(env.standIn.requests.length).toBe(before);
    const j = JSON.parse(stdout()) as { dryRun: string; services: { manifests: { kind: string; metadata: { labels: Record<string, string> } }[] }[] };
    expect(j.dryRun).toBe('client');
    expect(j.services[0]?.manifests.map((m) => m.kind)).toEqual(['Service', 'NetworkPolicy', 'Deployment']);
  });

  it('Ctrl-C while waiting: stops at once, exit 130, no rollback', async () => {
    writeService(env.site, 'sierra');
    env.standIn.controller.script('default', 'sierra', { kind: 'stuck' });
    const c = siteContext(env.site);
    setTimeout(() => c.abort.abort(), 400);
    const t = performance.now();
    const r = await deployServices(c.ctx, ['sierra'], { build: false, rollbackOnFailure: true }, { images: standInImages(env.site) });
    expect(r.exitCode).toBe(130);
    expect(r.services[0]?.status).toBe('interrupted');
    expect(r.services[0]?.rollbacks).toEqual([]);
    expect(performance.now() - t).toBeLessThan(2000);
  });

  it('cluster-scoped objects (a Namespace, a Calico GlobalNetworkPolicy) are applied without a namespace, first for the Namespace', async () => {
    const dir = writeService(env.site, 'tango');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      `${dir}/cluster.yaml`,
      "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: tango-deny-egress}\nspec: {selector: \"app == 'tango'\", types: [Egress]}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: tango-extra}\n",
    );
    const r = await deployServices(siteContext(env.site).ctx, ['tango'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    expect(r.exitCode).toBe(0);
    expect(r.services[0]?.objects.map((o) => `${o.ref.kind}:${o.ref.namespace ?? '(cluster)'}`)).toEqual(['Namespace:(cluster)', 'Service:default', 'GlobalNetworkPolicy:(cluster)', 'Deployment:default']);
    expect(env.standIn.requests.some((q) => q.method === 'PATCH' && q.path === '/apis/projectcalico.org/v3/globalnetworkpolicies/tango-deny-egress')).toBe(true);
    expect(env.standIn.requests.some((q) => q.method === 'PATCH' && q.path === '/api/v1/namespaces/tango-extra')).toBe(true);
  });

  it('objects go to the inventory namespace unless they name their own', async () => {
    env.standIn.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'intranet' } });
    env.site.cleanup();
    env.site = makeSite(env.standIn, { namespace: 'intranet' });
    writeService(env.site, 'november');
    const r = await deployServices(siteContext(env.site).ctx, ['november'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    expect(r.exitCode).toBe(0);
    expect(r.services[0]?.objects.map((o) => o.ref.namespace)).toEqual(['intranet', 'intranet']);
    expect(deployment('november', 'intranet')).toBeTruthy();
  });

  it('an object in a namespace that does not exist: the API error, no stack trace', async () => {
    writeService(env.site, 'oscar');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${env.site.services}/oscar/extra.yaml`, 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: oscar-conf, namespace: nowhere }\ndata: { a: b }\n');
    const r = await deployServices(siteContext(env.site).ctx, ['oscar'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) });
    expect(r.exitCode).toBe(1);
    expect(r.services[0]?.error?.message).toBe('applying ConfigMap nowhere/oscar-conf: namespaces "nowhere" not found');
  });
});
