/**
 * The built CLI (`node bin/enssib.js`, built by `npm test` before the tests):
 * the site's example services pass `service deploy --dry-run` over the bundled
 * inventory inside a network namespace with no network at all (a client dry
 * run contacts nothing), and the service commands run end to end against the
 * Kubernetes STAND-IN API server.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, BIN, enssib } from '../../support/cli.js';
import { startKubeStandIn, type KubeStandIn } from '../../support/kube-stand-in/index.js';
import { inventoryText } from '../../support/kube-stand-in/harness.js';
import { at, records } from '../../../src/k8s/types.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const SERVICES = ['ldap', 'mail', 'www'];

/** Runs the CLI with no network interface but loopback (unshare -n): anything it tried to reach would fail. */
async function offline(args: string[], cwd = ROOT) {
  assertBuilt();
  const home = mkdtempSync(join(tmpdir(), 'enssib-home-'));
  const r = await execa('unshare', ['-n', 'node', BIN, ...args], {
    cwd,
    reject: false,
    extendEnv: false,
    env: { PATH: process.env.PATH ?? '', HOME: home, NO_COLOR: '1', CI: '1', DOCKER_HOST: 'unix:///nonexistent/docker.sock', KUBECONFIG: join(home, 'no-kubeconfig') },
    stdin: 'ignore',
  });
  rmSync(home, { recursive: true, force: true });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

describe("the site's example services (bundled inventory, client dry run, no network)", () => {
  it.each(SERVICES)('service deploy %s --dry-run', async (svc) => {
    const r = await offline(['service', 'deploy', svc, '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('nothing was contacted');
    expect(r.stdout).toMatch(new RegExp(`image: registry\\.cluster\\.enssib\\.fr:5000/${svc}:[0-9a-f]{12,}`));
    expect(r.stdout).toContain(`apps/v1 Deployment default/${svc}`);
    expect(r.stdout).toContain('pinned to its digest');
  });

  it('the examples are what the site runs: ldap on 389/636 with its iSCSI volume on both portals and cert-ldap, www with its Calico policy', async () => {
    const r = await offline(['service', 'deploy', '--all', '--dry-run', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { services: { service: string; manifests: Record<string, unknown>[] }[] };
    expect(report.services.map((s) => s.service)).toEqual(expect.arrayContaining(SERVICES));
    const objs = (svc: string) => report.services.find((s) => s.service === svc)?.manifests ?? [];
    const find = (svc: string, kind: string) => objs(svc).find((o) => o.kind === kind) ?? {};

    for (const svc of SERVICES) for (const o of objs(svc)) expect(['v1', 'apps/v1', 'projectcalico.org/v3']).toContain(o.apiVersion);
    const ldap = find('ldap', 'Deployment');
    const pod = at(ldap, 'spec', 'template', 'spec');
    expect(records(at(pod, 'containers', 0, 'ports')).map((p) => p.containerPort)).toEqual([389, 636]);
    const volumes = records(at(pod, 'volumes'));
    expect(volumes.find((v) => v.iscsi)?.iscsi).toMatchObject({ iqn: 'iqn.2016-04.fr.enssib:ldap', targetPortal: '10.66.6.1:3260', portals: ['10.66.6.2:3260'] });
    const cert = volumes.find((v) => v.secret);
    expect(at(cert, 'secret', 'secretName')).toBe('cert-ldap');
    expect(records(at(pod, 'containers', 0, 'volumeMounts')).find((m) => m.name === cert?.name)?.mountPath).toBe('/etc/ldap/certs');
    expect(records(at(find('ldap', 'Service'), 'spec', 'ports')).map((p) => p.port)).toEqual([389, 636]);
    // labels on the object, never on the selector or the pod template
    expect(at(ldap, 'metadata', 'labels')).toEqual({ 'app.kubernetes.io/name': 'ldap', 'app.kubernetes.io/managed-by': 'enssib' });
    expect(at(ldap, 'spec', 'selector')).toEqual({ matchLabels: { name: 'ldap' } });
    expect(at(ldap, 'spec', 'template', 'metadata', 'labels')).toEqual({ name: 'ldap' });

    const policy = find('www', 'NetworkPolicy');
    expect(policy.apiVersion).toBe('projectcalico.org/v3');
    expect(at(policy, 'spec', 'ingress', 0)).toMatchObject({ action: 'Allow', protocol: 'TCP', destination: { ports: [80, 443] } });
    expect(at(policy, 'spec', 'egress')).toContainEqual({ action: 'Allow', protocol: 'TCP', destination: { selector: "unit == 'sql'", ports: [3306] } });
    expect(at(policy, 'spec', 'selector')).toBe("name == 'apache'");
    expect(at(find('www', 'Deployment'), 'spec', 'template', 'metadata', 'labels')).toEqual({ name: 'apache' });
  });

  it('service new: a folder from templates/ that passes its own deploy --dry-run; hostile names create nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-site-'));
    try {
      cpSync(join(ROOT, 'inventory.yaml'), join(dir, 'inventory.yaml'));
      const r = await offline(['service', 'new', 'wiki'], dir);
      expect(r.code, r.stderr).toBe(0);
      for (const f of ['Dockerfile', 'deployment.yaml', 'service.yaml', 'policy.yaml']) expect(existsSync(join(dir, 'services', 'wiki', f))).toBe(true);
      const dep = parse(readFileSync(join(dir, 'services', 'wiki', 'deployment.yaml'), 'utf8')) as { spec: { template: { spec: { containers: { image: string }[] } } } };
      expect(dep.spec.template.spec.containers[0]?.image).toBe('wiki');
      const d = await offline(['service', 'deploy', 'wiki', '--dry-run'], dir);
      expect(d.code, d.stderr).toBe(0);
      expect(d.stdout).toMatch(/image: registry\.cluster\.enssib\.fr:5000\/wiki:[0-9a-f]{12,}/);
      const again = await offline(['service', 'new', 'wiki'], dir);
      expect(again.code).toBe(2);
      expect(again.stderr).toContain('already exists');
      for (const bad of ['mail;reboot', '$(id)', '../x', '', 'a'.repeat(64), 'Wiki', 'wikí']) {
        const b = await offline(['service', 'new', bad], dir);
        expect(b.code, bad).toBe(2);
        expect(b.stderr).not.toMatch(/\n\s+at /);
      }
      expect(readFileSync(join(dir, 'inventory.yaml'), 'utf8')).toBe(readFileSync(join(ROOT, 'inventory.yaml'), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the CLI against the Kubernetes stand-in', () => {
  let standIn: KubeStandIn;
  let dir: string;
  // no Docker engine reachable: nothing here may build an image
  const env = () => ({ HOME: dir, KUBECONFIG: '', DOCKER_HOST: 'unix:///nonexistent/docker.sock' });

  beforeAll(async () => {
    standIn = await startKubeStandIn({ rolloutMs: 200 });
    dir = mkdtempSync(join(tmpdir(), 'enssib-cli-k8s-'));
    writeFileSync(join(dir, 'inventory.yaml'), inventoryText({ api: standIn.url }));
    standIn.writeKubeconfig(join(dir, 'kc'));
    // a service that uses a public image: no image to build, so no Docker engine or registry is needed
    const svc = join(dir, 'services', 'echo');
    cpSync(join(ROOT, 'templates', 'service'), svc, { recursive: true });
    for (const f of ['deployment.yaml', 'service.yaml', 'policy.yaml']) {
      writeFileSync(join(svc, f), readFileSync(join(svc, f), 'utf8').replaceAll('{{name}}', 'echo').replace(/^(\s+)image: echo$/m, '$1image: docker.io/library/busybox:1.36'));
    }
    rmSync(join(svc, 'Dockerfile'));
    writeFileSync(join(dir, 'cert.pem'), 'SECRET-CONTENT-91bd\n');
  });
  afterAll(async () => {
    await standIn?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (args: string[]) => enssib(['--kubeconfig', join(dir, 'kc'), ...args], { cwd: dir, env: env() });

  it('deploy, diff, status, list, expose and secret create', async () => {
    const d = await run(['service', 'deploy', 'echo']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain('echo: deployed');
    expect(d.stdout).toContain('deployment "echo" successfully rolled out');

    const same = await run(['service', 'diff', 'echo']);
    expect(same.code, same.stderr).toBe(0);
    writeFileSync(join(dir, 'services', 'echo', 'deployment.yaml'), readFileSync(join(dir, 'services', 'echo', 'deployment.yaml'), 'utf8').replace('replicas: 1', 'replicas: 2'));
    const changed = await run(['service', 'diff', 'echo']);
    expect(changed.code).toBe(4);
    expect(changed.stdout).toMatch(/^\+\s+replicas: 2$/m);

    const st = await run(['service', 'status', 'echo', '-o', 'json']);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout).workloads[0]).toMatchObject({ ready: 1, desired: 1, rolledOut: true });

    const l = await run(['service', 'list']);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toMatch(/^echo\s+3\/3\s+1\/1\s+busybox:1\.36\s+rolled out$/m);

    const e = await run(['service', 'expose', 'echo', '--ip', '192.168.66.40']);
    expect(e.code, e.stderr).toBe(0);
    expect(standIn.object('v1', 'ConfigMap', 'kube-system', 'vip-configmap')?.data).toEqual({ '192.168.66.40': 'default/echo' });
    const badIp = await run(['service', 'expose', 'echo', '--ip', '10.100.0.1;reboot']);
    expect(badIp.code).toBe(2);

    const s = await run(['secret', 'create', 'cert-echo', '--from-file', 'tls.crt=cert.pem', '-v']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toContain('Secret default/cert-echo: created');
    expect(s.stdout + s.stderr).not.toContain('SECRET-CONTENT');
    expect(s.stdout + s.stderr).not.toContain(Buffer.from('SECRET-CONTENT-91bd\n').toString('base64'));
    const journal = readFileSync(join(dir, 'journal.jsonl'), 'utf8');
    expect(journal).toContain('secret create cert-echo');
    expect(journal).not.toContain('SECRET-CONTENT');
    expect(journal).not.toContain(Buffer.from('SECRET-CONTENT-91bd\n').toString('base64'));
  });

  it('a wrong token and an API server that is down: one clear error, exit 1, no stack trace', async () => {
    standIn.writeKubeconfig(join(dir, 'kc-bad'), { token: 'nope' });
    const bad = await enssib(['--kubeconfig', join(dir, 'kc-bad'), 'service', 'deploy', 'echo'], { cwd: dir, env: env() });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('refused the credentials (401 Unauthorized)');
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    // an inventory and kubeconfig that agree on a server nobody listens on
    writeFileSync(join(dir, 'kc-down'), readFileSync(join(dir, 'kc'), 'utf8').replace(standIn.url, 'http://127.0.0.1:9'));
    writeFileSync(join(dir, 'inventory-down.yaml'), inventoryText({ api: 'http://127.0.0.1:9' }));
    const down = await enssib(['-i', join(dir, 'inventory-down.yaml'), '--kubeconfig', join(dir, 'kc-down'), 'service', 'status', 'echo'], { cwd: dir, env: env() });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot reach the Kubernetes API server at http://127.0.0.1:9: connection refused');
    expect(down.stderr).not.toMatch(/\n\s+at /);
  });
});
