import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { manifestFiles, parseManifests, readManifests } from '../../../src/services/manifests.js';

const DEP = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ldap
spec:
  selector:
    matchLabels:
      name: ldap
  template:
    metadata:
      labels:
        name: ldap
    spec:
      containers:
        - name: ldap
          image: ldap
`;

function refused(text: string, re: RegExp, file = '/s/ldap/deployment.yaml'): ConfigError {
  let err: unknown;
  try {
    parseManifests(text, file);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as Error).message).toMatch(re);
  return err as ConfigError;
}

describe('parseManifests', () => {
  it('reads every document with the line it starts on; skips empty documents and comments', () => {
    const text = `# the Service\n---\napiVersion: v1\nkind: Service\nmetadata: {name: ldap}\n---\n---\n# nothing\n---\n${DEP}`;
    const ms = parseManifests(text, 'f.yaml');
    expect(ms.map((m) => `${m.object.kind}@${m.line}`)).toEqual(['Service@3', 'Deployment@10']);
    expect(ms[1]?.lineOf(['spec', 'selector'])).toBe(15);
    expect(ms[1]?.lineOf(['spec', 'template', 'spec', 'containers', 0, 'image'])).toBe(25);
  });

  it.each([
    ['a syntax error', 'apiVersion: v1\nkind: Service\nmetadata:\n  name: [ldap\n', /^\/s\/ldap\/deployment\.yaml:\d+:\d+: YAML syntax error: /],
    ['a tab for indentation', 'apiVersion: v1\nkind: Service\nmetadata:\n\tname: x\n', /deployment\.yaml:4:1: YAML syntax error/],
    ['a duplicate key', 'apiVersion: v1\nkind: Service\nkind: Pod\nmetadata: {name: x}\n', /deployment\.yaml:3:1: YAML syntax error: Map keys must be unique/],
    ['a list instead of an object', '- a\n- b\n', /deployment\.yaml:1: expected a Kubernetes object/],
    ['a scalar', 'hello\n', /deployment\.yaml:1: expected a Kubernetes object/],
    ['no kind', 'apiVersion: v1\nmetadata: {name: x}\n', /deployment\.yaml:1: this object has no kind$/],
    ['an empty kind', 'apiVersion: v1\nkind: ""\nmetadata: {name: x}\n', /this object has no kind/],
    ['no apiVersion', 'kind: Service\nmetadata: {name: x}\n', /deployment\.yaml:1: the Service has no apiVersion$/],
    ['no name', 'apiVersion: v1\nkind: Service\nmetadata: {}\n', /deployment\.yaml:1: the Service has no metadata\.name$/],
    ['generateName', 'apiVersion: v1\nkind: Pod\nmetadata: {generateName: x-}\n', /the Pod has no metadata\.name/],
    ['a List', 'apiVersion: v1\nkind: List\nmetadata: {name: x}\nitems: []\n', /a List is not applied as such/],
    ['an invalid name', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "Mail;reboot"}\n', /deployment\.yaml:3: ConfigMap name "Mail;reboot" is not valid/],
    ['a Service name with a dot', 'apiVersion: v1\nkind: Service\nmetadata: {name: a.b}\n', /Service name "a\.b" is not valid/],
    ['a bad namespace', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: "../etc"}\n', /namespace "\.\.\/etc" is not valid/],
    ['an extensions/v1beta1 Deployment', DEP.replace('apps/v1', 'extensions/v1beta1'), /deployment\.yaml:1: Deployment "ldap" uses extensions\/v1beta1, .* use apps\/v1$/],
    ['a Deployment without selector', DEP.replace(/ {2}selector:\n {4}matchLabels:\n {6}name: ldap\n/, ''), /Deployment "ldap" has no spec\.selector/],
    ['a selector that does not match', DEP.replace('      name: ldap\n  template', '      name: slapd\n  template'), /deployment\.yaml:6: the selector of Deployment "ldap" does not match its pod template's labels/],
    ['no containers', DEP.replace(/ {6}containers:\n.*\n.*\n$/s, '      containers: []\n'), /has no containers/],
    ['a container without image', DEP.replace('          image: ldap\n', ''), /container "ldap" of Deployment "ldap" has no image/],
  ])('refuses %s', (_what, text, re) => {
    refused(text, re);
  });

  it('names the selector terms that fail, including matchExpressions', () => {
    const e = refused(
      DEP.replace('    matchLabels:\n      name: ldap\n', '    matchLabels:\n      name: ldap\n    matchExpressions:\n      - { key: tier, operator: In, values: [db] }\n'),
      /does not match/,
    );
    expect(e.details[0]).toBe('selector terms not satisfied: tier In ["db"]');
    expect(e.details[1]).toBe('spec.template.metadata.labels: {"name":"ldap"}');
  });

  it('accepts matchExpressions that the labels satisfy', () => {
    const ok = DEP.replace('    matchLabels:\n      name: ldap\n', '    matchExpressions:\n      - { key: name, operator: In, values: [ldap, slapd] }\n      - { key: canary, operator: DoesNotExist }\n');
    expect(parseManifests(ok, 'x.yaml')).toHaveLength(1);
  });

  it('refuses a billion-laughs alias bomb', () => {
    const bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n';
    expect(() => parseManifests(`apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  ${bomb.split('\n').join('\n  ')}`, 'x.yaml')).toThrow();
  });
});

describe('readManifests', () => {
  it('reads every .yaml/.yml of the folder but enssib.yaml and hidden files, in name order; refuses duplicates', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-manifests-'));
    writeFileSync(join(dir, 'enssib.yaml'), 'image: ldap\n');
    writeFileSync(join(dir, '.hidden.yaml'), 'not: a manifest\n');
    writeFileSync(join(dir, 'b.yml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: ldap}\n');
    writeFileSync(join(dir, 'a.yaml'), DEP);
    writeFileSync(join(dir, 'README.md'), '# ldap\n');
    mkdirSync(join(dir, 'hooks'));
    writeFileSync(join(dir, 'hooks', 'x.yaml'), 'not: read\n');
    expect(manifestFiles(dir).map((f) => f.slice(dir.length + 1))).toEqual(['a.yaml', 'b.yml']);
    expect(readManifests(dir).map((m) => m.object.kind)).toEqual(['Deployment', 'Service']);
    writeFileSync(join(dir, 'c.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: ldap}\n');
    expect(() => readManifests(dir)).toThrow(/c\.yaml:1: Service "ldap" is defined twice/);
    rmSync(dir, { recursive: true, force: true });
  });
});
