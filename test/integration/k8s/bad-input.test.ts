/**
 * The bad inputs of the Services issue, each a clear error before anything
 * changes: broken YAML (file:line), objects without kind or name, a selector
 * that does not match its pod labels, an image naming no service, a removed
 * API, an API server that is down or refuses the token. Against the
 * Kubernetes STAND-IN API server where one is needed.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { standInSite } from '../../support/kube-stand-in/fixture.js';
import { startKubeStandIn } from '../../support/kube-stand-in/index.js';
import { makeSite, siteContext, standInImages, writeService, type Site } from '../../support/kube-stand-in/harness.js';
import { deployCommand, deployServices } from '../../../src/services/deploy.js';
import { diffService } from '../../../src/services/diff.js';
import { exposeCommand } from '../../../src/services/expose.js';
import { statusCommand } from '../../../src/services/status.js';
import { ConfigError, OperationError, UsageError } from '../../../src/errors.js';
import { printError } from '../../../src/ui/errors.js';

const env = standInSite({ rolloutMs: 100 });

const deploy = (s: Site, names: string[]) => deployServices(siteContext(s).ctx, names, { build: false, rollbackOnFailure: false }, { images: standInImages(s) });

async function refusedBeforeContact(names: string[], error: RegExp, cls: new (...a: never[]) => Error = ConfigError): Promise<Error> {
  const before = env.standIn.requests.length;
  const images = standInImages(env.site);
  const e = await deployServices(siteContext(env.site).ctx, names, { build: true, rollbackOnFailure: false }, { images }).then(
    () => null,
    (x: unknown) => x as Error,
  );
  expect(e).toBeInstanceOf(cls);
  expect(e?.message).toMatch(error);
  expect(images.calls).toEqual([]); // nothing built
  expect(env.standIn.requests.length).toBe(before); // nothing contacted
  return e as Error;
}

describe('bad manifests are refused before anything is built or contacted', () => {
  it('a YAML syntax error, with file:line:column', async () => {
    const dir = writeService(env.site, 'alpha');
    writeFileSync(join(dir, 'service.yaml'), 'apiVersion: v1\nkind: Service\nmetadata:\n  name: alpha\nspec:\n  ports:\n    - port: 80\n   targetPort: 8080\n');
    await refusedBeforeContact(['alpha'], new RegExp(`^${join(dir, 'service.yaml').replace(/\//g, '\\/')}:8:\\d+: YAML syntax error`));
  });

  it('a duplicate key is a syntax error too', async () => {
    const dir = writeService(env.site, 'alpha');
    writeFileSync(join(dir, 'service.yaml'), 'apiVersion: v1\nkind: Service\nmetadata:\n  name: alpha\n  name: beta\n');
    await refusedBeforeContact(['alpha'], /service\.yaml:5:\d+: YAML syntax error: Map keys must be unique/);
  });

  it('an object without kind, and one without metadata.name, with the line of the document', async () => {
    const dir = writeService(env.site, 'alpha');
    writeFileSync(join(dir, 'extra.yaml'), '# first\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: ok }\n---\n# second\napiVersion: v1\nmetadata: { name: nokind }\n');
    await refusedBeforeContact(['alpha'], /extra\.yaml:7: this object has no kind$/);
    writeFileSync(join(dir, 'extra.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: { a: b }\n');
    await refusedBeforeContact(['alpha'], /extra\.yaml:1: the ConfigMap has no metadata\.name$/);
  });

  it('a Deployment whose selector does not match its pod labels (with the line of the selector)', async () => {
    writeService(env.site, 'alpha', { labels: { app: 'alpha', tier: 'web' }, selector: { app: 'alpha', tier: 'db' } });
    const e = (await refusedBeforeContact(['alpha'], /deployment\.yaml:\d+: the selector of Deployment "alpha" does not match its pod template's labels/)) as ConfigError;
    expect(e.details[0]).toBe('selector terms not satisfied: tier=db');
  });

  it('an image reference naming a service that does not exist', async () => {
    writeService(env.site, 'alpha', { image: 'alpah' });
    const e = (await refusedBeforeContact(['alpha'], /deployment\.yaml:\d+: image "alpah" names no service/)) as ConfigError;
    expect(e.details).toContain('Services: alpha');
  });

  it("an image in the site's registry that no service builds", async () => {
    writeService(env.site, 'alpha', { image: '127.0.0.1:9/ghost:1.0' });
    await refusedBeforeContact(['alpha'], /image "127\.0\.0\.1:9\/ghost:1\.0" is in the site's registry, but no service builds "ghost"/);
  });

  it("the site's old extensions/v1beta1 Deployment, with the API to use", async () => {
    const dir = writeService(env.site, 'alpha');
    writeFileSync(
      join(dir, 'deployment.yaml'),
      'apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata:\n  name: ldap\nspec:\n  replicas: 1\n  template:\n    metadata:\n      labels:\n        name: ldap\n',
    );
    const e = (await refusedBeforeContact(['alpha'], /deployment\.yaml:1: Deployment "ldap" uses extensions\/v1beta1, which Kubernetes no longer serves \(removed in 1\.16\); use apps\/v1$/)) as ConfigError;
    expect(e.details[0]).toContain('apps/v1 requires spec.selector');
  });

  it("the site's old calicoctl v1 policy", async () => {
    const dir = writeService(env.site, 'alpha');
    writeFileSync(join(dir, 'policy.yaml'), "apiVersion: v1\nkind: policy\nmetadata:\n  name: www\nspec:\n  selector: name == 'apache'\n");
    await refusedBeforeContact(['alpha'], /policy\.yaml:1: policy "www" uses v1, .*use projectcalico\.org\/v3/);
  });

  it('a folder without any Kubernetes YAML, and a missing folder', async () => {
    const dir = writeService(env.site, 'alpha');
    const { rmSync } = await import('node:fs');
    for (const f of ['deployment.yaml', 'service.yaml']) rmSync(join(dir, f));
    await refusedBeforeContact(['alpha'], /no Kubernetes objects/);
    await refusedBeforeContact(['nope'], /no service "nope"/, UsageError);
  });

  it.each([['mail;reboot'], ['$(id)'], ['../x'], [''], ['a'.repeat(64)], ['Mail'], ['mél'], ['-x']])('refuses the service name %j', async (name) => {
    const before = env.standIn.requests.length;
    await expect(deployCommand(siteContext(env.site).ctx, { args: [[name]], opts: {} }, { images: standInImages(env.site) })).rejects.toBeInstanceOf(UsageError);
    await expect(diffService(siteContext(env.site).ctx, name, { images: standInImages(env.site) })).rejects.toBeInstanceOf(UsageError);
    await expect(statusCommand(siteContext(env.site).ctx, { args: [name], opts: {} })).rejects.toBeInstanceOf(UsageError);
    await expect(exposeCommand(siteContext(env.site).ctx, { args: [name], opts: { ip: '192.168.66.20' } })).rejects.toBeInstanceOf(UsageError);
    expect(env.standIn.requests.length).toBe(before);
  });

  it('--all skips folders without Kubernetes YAML, saying so', async () => {
    writeService(env.site, 'alpha');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(env.site.services, 'base-image'));
    writeFileSync(join(env.site.services, 'base-image', 'Dockerfile'), 'FROM scratch\n');
    const { ctx, stderr } = siteContext(env.site, { dryRun: 'client' });
    expect(await deployCommand(ctx, { args: [[]], opts: { all: true } }, { images: standInImages(env.site) })).toBe(0);
    expect(stderr()).toContain('no Kubernetes YAML in services/base-image: nothing to deploy there');
  });

  it('refuses names with --all, nothing at all, and a bad --timeout', async () => {
    writeService(env.site, 'alpha');
    await expect(deployCommand(siteContext(env.site).ctx, { args: [['alpha']], opts: { all: true } })).rejects.toThrow(/names or --all, not both/);
    await expect(deployCommand(siteContext(env.site).ctx, { args: [[]], opts: {} })).rejects.toThrow(/which services/);
    for (const t of ['0', '-1', '1.5', 'abc', '86401', '$(id)']) {
      await expect(deployCommand(siteContext(env.site).ctx, { args: [['alpha']], opts: { timeout: t } })).rejects.toThrow(/--timeout/);
    }
  });
});

describe('the API server', () => {
  it('is down: says it cannot reach it, no stack trace', async () => {
    const port = await freePort();
    const down = makeSite({ url: `http://127.0.0.1:${port}`, writeKubeconfig: (f) => env.standIn.writeKubeconfig(f) });
    writeFileSync(down.kubeconfig, (await import('node:fs')).readFileSync(down.kubeconfig, 'utf8').replace(env.standIn.url, `http://127.0.0.1:${port}`));
    writeService(down, 'alpha');
    const e = await deploy(down, ['alpha']).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(OperationError);
    expect((e as Error).message).toBe(`cannot reach the Kubernetes API server at http://127.0.0.1:${port}: connection refused`);
    const { ctx, stderr } = siteContext(down);
    expect(printError(ctx.out, e)).toBe(1);
    expect(stderr()).not.toMatch(/\n\s+at /);
    down.cleanup();
  });

  it('refuses the token: says so, naming the kubeconfig', async () => {
    const bad = makeSite(env.standIn, { token: 'wrong-token' });
    writeService(bad, 'alpha');
    const e = await deploy(bad, ['alpha']).then(
      () => null,
      (x: unknown) => x as OperationError,
    );
    expect(e).toBeInstanceOf(OperationError);
    expect(e?.message).toBe(`the Kubernetes API server at ${env.standIn.url} refused the credentials (401 Unauthorized)`);
    expect(e?.details.join('\n')).toContain(`kubeconfig: ${bad.kubeconfig}`);
    bad.cleanup();
  });

  it('does not serve the Calico API (Calico not installed): says which API is missing', async () => {
    const noCalico = await startKubeStandIn({ calico: false });
    const s = makeSite(noCalico);
    writeService(s, 'alpha', { policy: true });
    const r = await deploy(s, ['alpha']);
    expect(r.exitCode).toBe(1);
    expect(r.services[0]?.error?.message).toBe('the cluster does not serve the API crd.projectcalico.org/v1');
    expect(r.services[0]?.error?.details[0]).toContain('is the software that defines it installed');
    s.cleanup();
    await noCalico.close();
  });

  it('kubeconfig missing, and an unknown --context', async () => {
    writeService(env.site, 'alpha');
    const { rmSync } = await import('node:fs');
    rmSync(env.site.kubeconfig);
    await expect(deploy(env.site, ['alpha'])).rejects.toThrow(/kubeconfig .* \(from inventory kubernetes\.kubeconfig\) does not exist/);
    env.standIn.writeKubeconfig(env.site.kubeconfig);
    await expect(deployServices(siteContext(env.site, { context: 'prod' }).ctx, ['alpha'], { build: false, rollbackOnFailure: false }, { images: standInImages(env.site) })).rejects.toThrow(/context "prod" is not in/);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}
