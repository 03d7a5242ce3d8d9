/**
 * Test harness for the 'k8s' tests: a site folder (inventory.yaml, services/,
 * kubeconfig pointing at the Kubernetes STAND-IN), a Context whose output is
 * captured, and a STAND-IN image resolver (the Images use case needs a Docker
 * engine and a registry; these tests are about Kubernetes).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { createContext, type Context, type GlobalOptions } from '../../../src/context.js';
import { fileInventory } from '../../../src/inventory/load.js';
import type { ServiceImage } from '../../../src/site/image.js';
import type { ImageResolver } from '../../../src/services/images.js';
import { createOutput } from '../../../src/ui/output.js';
import { createPrompter } from '../../../src/ui/prompt.js';
import type { KubeStandIn } from './server.js';

/** On loopback, port 9 (discard): a registry call that slipped through goes nowhere but loopback. */
export const REGISTRY = '127.0.0.1:9';

export interface Site {
  dir: string;
  services: string;
  kubeconfig: string;
  journal: string;
  inventory: string;
  cleanup(): void;
}

export function inventoryText(o: { api: string; kubeconfig?: string; namespace?: string; keepalived?: boolean }): string {
  return `site: k8s-test
networks:
  pods: 10.100.0.0/16
  services: 10.101.0.0/23
  cluster: { cidr: 10.66.6.0/24, mtu: 9000 }
  users: 192.168.66.0/26
hosts:
  - { name: data1, address: 10.66.6.1, roles: [master, storage] }
  - { name: data2, address: 10.66.6.2, roles: [master, storage] }
  - { name: node01, address: 10.66.6.11, roles: [worker], podSubnet: 10.100.1.0/24 }
registry: { host: ${REGISTRY} }
kubernetes:
  api: ${o.api}
${o.kubeconfig ? `  kubeconfig: ${o.kubeconfig}\n` : ''}${o.namespace ? `  namespace: ${o.namespace}\n` : ''}storage:
  volumeGroup: vg_cluster
  drbdResource: r0
  metadataHost: data1
  iqnPrefix: iqn.2016-04.fr.enssib
  portals: [10.66.6.1:3260, 10.66.6.2:3260]
  targetDriver: scst
${o.keepalived === false ? '' : 'keepalivedVip: { configMap: vip-configmap, namespace: kube-system }\n'}journal: journal.jsonl
`;
}

/** A site folder beside the stand-in: inventory, services/, kubeconfig. */
export function makeSite(standIn: Pick<KubeStandIn, 'url' | 'writeKubeconfig'>, o: { namespace?: string; token?: string; keepalived?: boolean } = {}): Site {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-k8s-'));
  const services = join(dir, 'services');
  mkdirSync(services);
  const kubeconfig = standIn.writeKubeconfig(join(dir, 'kubeconfig'), o.token ? { token: o.token } : {});
  const inventory = join(dir, 'inventory.yaml');
  writeFileSync(inventory, inventoryText({ api: standIn.url, kubeconfig: 'kubeconfig', ...(o.namespace ? { namespace: o.namespace } : {}), ...(o.keepalived === false ? { keepalived: false } : {}) }));
  return { dir, services, kubeconfig, journal: join(dir, 'journal.jsonl'), inventory, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Captured {
  ctx: Context;
  stdout(): string;
  stderr(): string;
  abort: AbortController;
}

function sink(into: string[]): Writable {
  return new Writable({
    write(chunk, _enc, cb) {
      into.push(String(chunk));
      cb();
    },
  });
}

/** A Context on a site, capturing stdout and stderr. */
export function siteContext(site: Site, opts: Partial<GlobalOptions> = {}): Captured {
  const out: string[] = [];
  const err: string[] = [];
  const abort = new AbortController();
  const full: GlobalOptions = { dryRun: false, yes: true, output: 'text', concurrency: 10, color: false, verbose: false, inventory: site.inventory, ...opts };
  const ctx = createContext({
    opts: full,
    out: createOutput({ format: full.output, color: false, verbose: full.verbose, stdout: sink(out), stderr: sink(err) }),
    prompt: createPrompter({ yes: true, isTTY: false }),
    env: { HOME: site.dir, PATH: process.env.PATH ?? '' },
    cwd: site.dir,
    inventory: fileInventory(site.inventory, { HOME: site.dir }),
    argv: ['enssib', 'test'],
    signal: abort.signal,
    renderer: 'silent',
  });
  return { ctx, stdout: () => out.join(''), stderr: () => err.join(''), abort };
}

/**
 * STAND-IN image resolver: gives each service image a digest derived from the
 * service folder's Dockerfile and a per-test "version", as if it had been
 * built and pushed. It records its calls.
 */
export function standInImages(site: Site, version: () => string = () => 'v1'): ImageResolver & { calls: { services: string[]; build: boolean; push: boolean }[] } {
  const calls: { services: string[]; build: boolean; push: boolean }[] = [];
  const f = (async (_ctx, services, opts) => {
    calls.push({ services: [...services], ...opts });
    return services.map((s): ServiceImage => {
      const df = join(site.services, s, 'Dockerfile');
      const content = existsSync(df) ? readFileSync(df) : Buffer.from(s);
      const h = createHash('sha256').update(content).update(version()).digest('hex');
      const tag = h.slice(0, 20);
      return { service: s, name: s, tag, reference: `${REGISTRY}/${s}:${tag}`, digest: `sha256:${createHash('sha256').update(tag).digest('hex')}`, status: 'present' };
    });
  }) as ImageResolver & { calls: typeof calls };
  f.calls = calls;
  return f;
}

export interface ServiceSpec {
  replicas?: number;
  deadline?: number;
  image?: string;
  labels?: Record<string, string>;
  selector?: Record<string, string>;
  secretVolume?: string;
  policy?: boolean;
  port?: number;
  strategy?: 'Recreate' | 'RollingUpdate';
}

/** Writes services/<name>/ with a Dockerfile, a Deployment, a Service and (optionally) a Calico policy. */
export function writeService(site: Site, name: string, s: ServiceSpec = {}): string {
  const dir = join(site.services, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Dockerfile'), `FROM scratch\nLABEL service=${name}\n`);
  const labels = s.labels ?? { app: name };
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas: s.replicas ?? 1,
      ...(s.deadline !== undefined ? { progressDeadlineSeconds: s.deadline } : {}),
      ...(s.strategy ? { strategy: { type: s.strategy } } : {}),
      selector: { matchLabels: s.selector ?? labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [{ name, image: s.image ?? name, ports: [{ containerPort: s.port ?? 8080 }] }],
          ...(s.secretVolume ? { volumes: [{ name: 'certificate', secret: { secretName: s.secretVolume } }] } : {}),
        },
      },
    },
  };
  writeFileSync(join(dir, 'deployment.yaml'), stringify(deployment));
  const service = { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: s.port ?? 8080 }] } };
  writeFileSync(join(dir, 'service.yaml'), stringify(service));
  if (s.policy) {
    writeFileSync(
      join(dir, 'policy.yaml'),
      stringify({
        apiVersion: 'crd.projectcalico.org/v1',
        kind: 'NetworkPolicy',
        metadata: { name },
        spec: { selector: `app == '${name}'`, types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [80, 443] } }] },
      }),
    );
  }
  return dir;
}

export function journalLines(site: Site): Record<string, unknown>[] {
  if (!existsSync(site.journal)) return [];
  return readFileSync(site.journal, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
