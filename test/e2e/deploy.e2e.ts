/**
 * End to end against a REAL Kubernetes cluster (opt-in: `npm run test:e2e`
 * with ENSSIB_E2E_KUBECONFIG; see test/e2e/run.sh). The same deploy the
 * stand-in tests exercise: server-side apply, a watched rollout, diff exit
 * codes, a failing rollout explained and rolled back, a Secret, status.
 *
 * Everything happens in a namespace enssib-e2e-<random> that the test creates
 * and deletes. The service uses a public image (ENSSIB_E2E_IMAGE, default the
 * pause image), so no registry of the site is needed.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubeApi, type KubeApi } from '../../src/k8s/api.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'enssib.js');
const KUBECONFIG = process.env.ENSSIB_E2E_KUBECONFIG;
const CONTEXT = process.env.ENSSIB_E2E_CONTEXT;
const IMAGE = process.env.ENSSIB_E2E_IMAGE ?? 'registry.k8s.io/pause:3.10';
const NS = `enssib-e2e-${randomBytes(3).toString('hex')}`;
const SVC = 'e2e-web';

let api: KubeApi;
let site: string;

function writeService(o: { replicas: number; image: string; deadline?: number }): void {
  const dir = join(site, 'services', SVC);
  mkdirSync(dir, { recursive: true });
  const labels = { app: SVC };
  writeFileSync(
    join(dir, 'deployment.yaml'),
    stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: SVC },
      spec: {
        replicas: o.replicas,
        progressDeadlineSeconds: o.deadline ?? 120,
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: 'main', image: o.image, resources: { requests: { cpu: '1m', memory: '8Mi' } } }] } },
      },
    }),
  );
  writeFileSync(join(dir, 'service.yaml'), stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: SVC }, spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } }));
}

const run = (args: string[]) =>
  execa('node', [BIN, '--kubeconfig', KUBECONFIG as string, ...(CONTEXT ? ['--context', CONTEXT] : []), ...args], {
    cwd: site,
    reject: false,
    env: { NO_COLOR: '1', CI: '1', KUBECONFIG: '' },
  }).then((r) => ({ code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }));

beforeAll(async () => {
  if (!KUBECONFIG) throw new Error('ENSSIB_E2E_KUBECONFIG is not set: the end-to-end test needs a real cluster (see test/e2e/run.sh)');
  const kc = new KubeConfig();
  kc.loadFromFile(KUBECONFIG);
  if (CONTEXT) kc.setCurrentContext(CONTEXT);
  api = await createKubeApi(kc);
  await api.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels: { 'app.kubernetes.io/managed-by': 'enssib-e2e' } } }, { force: true, fieldManager: 'enssib-e2e' });
  site = mkdtempSync(join(tmpdir(), 'enssib-e2e-'));
  const server = kc.getCurrentCluster()?.server ?? 'https://kubernetes.invalid';
  writeFileSync(
    join(site, 'inventory.yaml'),
    [
      'networks: { pods: 10.100.0.0/16, services: 10.101.0.0/23, cluster: { cidr: 10.66.6.0/24, mtu: 9000 }, users: 192.168.66.0/26 }',
      'hosts: [{ name: data1, address: 10.66.6.1, roles: [master, storage] }]',
      'registry: { host: "registry.e2e.invalid:5000" }',
      `kubernetes: { api: "${server}", namespace: ${NS} }`,
      'storage: { volumeGroup: vg, drbdResource: r0, metadataHost: data1, iqnPrefix: iqn.2016-04.fr.enssib, portals: [10.66.6.1:3260], targetDriver: lio }',
      'journal: journal.jsonl',
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  if (api) await api.delete({ apiVersion: 'v1', kind: 'Namespace', name: NS }).catch(() => undefined);
  if (site) rmSync(site, { recursive: true, force: true });
});

describe(`service deploy on a real cluster (namespace ${NS})`, () => {
  it('deploys and waits for the rollout; diff is then 0', async () => {
    writeService({ replicas: 1, image: IMAGE });
    const d = await run(['service', 'deploy', SVC, '--no-build']);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    expect(d.stdout).toContain(`deployment "${SVC}" successfully rolled out`);
    const live = await api.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: SVC, namespace: NS });
    expect(live?.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('enssib');
    expect(live?.metadata.managedFields?.some((m) => m.manager === 'enssib' && m.operation === 'Apply')).toBe(true);
    const diff = await run(['service', 'diff', SVC]);
    expect(diff.code, diff.stdout + diff.stderr).toBe(0);
  });

  it('a change shows in diff (exit 4) and deploys', async () => {
    writeService({ replicas: 2, image: IMAGE });
    const diff = await run(['service', 'diff', SVC]);
    expect(diff.code).toBe(4);
    expect(diff.stdout).toMatch(/^\+\s+replicas: 2$/m);
    const d = await run(['service', 'deploy', SVC]);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    const st = await run(['service', 'status', SVC, '-o', 'json']);
    expect(JSON.parse(st.stdout).workloads[0]).toMatchObject({ desired: 2, ready: 2, rolledOut: true });
  });

  it('an image that cannot be pulled: explained, and rolled back with --rollback-on-failure', async () => {
    writeService({ replicas: 2, image: `${IMAGE.replace(/(@.*|:[^/:]*)$/, '')}:enssib-e2e-does-not-exist`, deadline: 30 });
    const d = await run(['service', 'deploy', SVC, '--rollback-on-failure']);
    expect(d.code).toBe(1);
    expect(d.stdout).toMatch(/cannot pull its image .*enssib-e2e-does-not-exist \((ErrImagePull|ImagePullBackOff)\)/);
    expect(d.stdout).toContain(`rolled back: deployment "${SVC}" successfully rolled out`);
    const live = await api.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: SVC, namespace: NS });
    expect(JSON.stringify(live?.spec)).toContain(IMAGE);
  });

  it('secret create: created, contents never shown', async () => {
    writeFileSync(join(site, 'value.txt'), 'E2E-SECRET-CONTENT\n');
    const s = await run(['secret', 'create', 'e2e-secret', '--from-file', 'value=value.txt']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout + s.stderr).not.toContain('E2E-SECRET-CONTENT');
    expect(readFileSync(join(site, 'journal.jsonl'), 'utf8')).not.toContain('E2E-SECRET-CONTENT');
    const live = await api.get({ apiVersion: 'v1', kind: 'Secret', name: 'e2e-secret', namespace: NS });
    expect(Buffer.from(String((live?.data as Record<string, string>).value), 'base64').toString()).toBe('E2E-SECRET-CONTENT\n');
  });
});
