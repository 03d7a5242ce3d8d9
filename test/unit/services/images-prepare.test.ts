import { describe, expect, it } from 'vitest';
import type { ServiceImage } from '../../../src/site/image.js';
import { imageTarget, imageUses, parseImageRef, pinnedReference } from '../../../src/services/images.js';
import { parseManifests } from '../../../src/services/manifests.js';
import { kindRank, labelled, planImages, prepareService, targetRef, type ServiceSource } from '../../../src/services/prepare.js';
import type { ServiceFolder } from '../../../src/site/folder.js';
import { at } from '../../../src/k8s/types.js';

const REG = 'registry.cluster.enssib.fr:5000';

describe('parseImageRef', () => {
  it.each([
    ['ldap', { repository: 'ldap' }],
    ['site/ldap', { repository: 'site/ldap' }],
    ['nginx:1.27', { repository: 'nginx', tag: '1.27' }],
    [`${REG}/ldap`, { registry: REG, repository: 'ldap' }],
    [`${REG}/ldap:abc`, { registry: REG, repository: 'ldap', tag: 'abc' }],
    [`${REG}/ldap@sha256:00`, { registry: REG, repository: 'ldap', digest: 'sha256:00' }],
    ['localhost/x:1@sha256:ff', { registry: 'localhost', repository: 'x', tag: '1', digest: 'sha256:ff' }],
    ['docker.io/library/busybox:1.36', { registry: 'docker.io', repository: 'library/busybox', tag: '1.36' }],
  ])('%s', (ref, parts) => {
    expect(parseImageRef(ref)).toEqual(parts);
  });
});

const manifest = (image: string) => parseManifests(`apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: www}\nspec:\n  selector: {matchLabels: {app: www}}\n  template:\n    metadata: {labels: {app: www}}\n    spec:\n      initContainers: [{name: init, image: "busybox:1.36"}]\n      containers:\n        - name: www\n          image: "${image}"\n`, '/s/www/deployment.yaml');

describe('imageTarget', () => {
  const catalogue = new Map([
    ['www', 'www'],
    ['php', 'php-fpm'],
  ]);
  const target = (image: string) => {
    const m = manifest(image);
    const use = imageUses(m).find((u) => u.container === 'www');
    if (!use) throw new Error('no use');
    return imageTarget(use, catalogue, REG);
  };
  it('a bare name is a service image (by the image name enssib.yaml may set)', () => {
    expect(target('www')).toEqual({ kind: 'service', service: 'www' });
    expect(target('php')).toEqual({ kind: 'service', service: 'php-fpm' });
  });
  it('a full reference elsewhere is left alone', () => {
    expect(target('docker.io/library/nginx:1.27')).toEqual({ kind: 'external' });
    expect(target('nginx:1.27')).toEqual({ kind: 'external' });
    expect(target(`${REG}/www:1.0`)).toEqual({ kind: 'external' });
  });
  it("the site's old untagged registry reference is pinned too, with a warning", () => {
    const t = target(`${REG}/www`);
    expect(t.kind).toBe('service');
    expect(t.kind === 'service' && t.warning).toMatch(/write "image: www"/);
  });
  it.each([
    ['wwww', /deployment\.yaml:12: image "wwww" names no service/],
    ['mail;reboot', /names no service/],
    [`${REG}/ghost`, /is in the site's registry, but no service builds "ghost"/],
  ])('refuses %s', (image, re) => {
    expect(() => target(image)).toThrow(re);
  });
});

describe('pinning and labels', () => {
  const img: ServiceImage = { service: 'www', name: 'www', tag: 'abc123', reference: `${REG}/www:abc123`, digest: `sha256:${'e'.repeat(64)}`, status: 'pushed' };
  it('pins by digest once known; shows the content tag before', () => {
    expect(pinnedReference(img)).toBe(`${REG}/www@sha256:${'e'.repeat(64)}`);
    const { digest: _d, ...planned } = img;
    expect(pinnedReference({ ...planned, status: 'planned' })).toBe(`${REG}/www:abc123`);
  });

  it('prepares a service: pins only its service images, labels only the objects’ own metadata, orders the apply', () => {
    const dep = manifest('www');
    const svc = parseManifests('apiVersion: v1\nkind: Service\nmetadata: {name: www, labels: {team: web}}\nspec: {selector: {app: www}}\n', '/s/www/service.yaml');
    const source: ServiceSource = { folder: { name: 'www', dir: '/s/www', dockerfile: '/s/www/Dockerfile', settings: { image: 'www' } } as ServiceFolder, manifests: [...dep, ...svc] };
    const plan = planImages([source], new Map([['www', 'www']]), REG);
    expect(plan.services).toEqual(['www']);
    const p = prepareService(source, plan, [img]);
    expect(p.objects.map((o) => o.object.kind)).toEqual(['Service', 'Deployment']);
    const d = p.objects[1]?.object;
    expect(at(d, 'spec', 'template', 'spec', 'containers', 0, 'image')).toBe(`${REG}/www@sha256:${'e'.repeat(64)}`);
    expect(at(d, 'spec', 'template', 'spec', 'initContainers', 0, 'image')).toBe('busybox:1.36');
    expect(at(d, 'metadata', 'labels')).toEqual({ 'app.kubernetes.io/name': 'www', 'app.kubernetes.io/managed-by': 'enssib' });
    expect(at(d, 'spec', 'selector')).toEqual({ matchLabels: { app: 'www' } });
    expect(at(d, 'spec', 'template', 'metadata', 'labels')).toEqual({ app: 'www' });
    expect(p.objects[0]?.object.metadata.labels).toEqual({ team: 'web', 'app.kubernetes.io/name': 'www', 'app.kubernetes.io/managed-by': 'enssib' });
    // the manifests read from disk are untouched
    expect(at(dep[0]?.object, 'spec', 'template', 'spec', 'containers', 0, 'image')).toBe('www');
  });

  it('labelled() overrides a wrong app.kubernetes.io/name and keeps other labels', () => {
    const o = labelled({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', labels: { 'app.kubernetes.io/name': 'other', x: 'y' } } }, 'www');
    expect(o.metadata.labels).toEqual({ 'app.kubernetes.io/name': 'www', 'app.kubernetes.io/managed-by': 'enssib', x: 'y' });
  });

  it('orders namespaces and secrets before services, workloads last; targetRef adds the default namespace to namespaced kinds only', () => {
    expect(['Deployment', 'Service', 'Namespace', 'Secret', 'NetworkPolicy'].sort((a, b) => kindRank(a) - kindRank(b))).toEqual(['Namespace', 'Secret', 'Service', 'NetworkPolicy', 'Deployment']);
    expect(targetRef({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n' } }, 'default')).toEqual({ apiVersion: 'v1', kind: 'Namespace', name: 'n' });
    expect(targetRef({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } }, 'intranet').namespace).toBe('intranet');
    expect(targetRef({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's', namespace: 'mine' } }, 'intranet').namespace).toBe('mine');
  });
});
