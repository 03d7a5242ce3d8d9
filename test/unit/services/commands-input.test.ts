import { mkdtempSync, writeFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mapLimit } from '../../../src/limit.js';
import { parseTimeout } from '../../../src/services/common.js';
import { addToVip } from '../../../src/services/expose.js';
import { renderServiceTemplate, templateDir } from '../../../src/services/new.js';
import { parseFromFiles } from '../../../src/services/secret.js';

describe('addToVip (keepalived-vip ConfigMap data)', () => {
  it('adds namespace/service under the address, keeps the others, joins several with commas, is idempotent', () => {
    const a = addToVip({}, '192.168.66.20', 'default/www');
    expect(a).toEqual({ data: { '192.168.66.20': 'default/www' }, changed: true, entries: ['default/www'] });
    const b = addToVip({ ...a.data, '192.168.66.21': 'default/ldap' }, '192.168.66.20', 'default/webmail');
    expect(b.data).toEqual({ '192.168.66.20': 'default/www,default/webmail', '192.168.66.21': 'default/ldap' });
    const c = addToVip(b.data, '192.168.66.20', 'default/www');
    expect(c.changed).toBe(false);
    expect(c.data).toEqual(b.data);
    expect(addToVip({ '192.168.66.20': ' default/www , ,default/x' }, '192.168.66.20', 'default/y').data['192.168.66.20']).toBe('default/www,default/x,default/y');
  });
});

describe('parseFromFiles', () => {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-secret-'));
  writeFileSync(join(dir, 'ldap.crt'), 'crt');
  writeFileSync(join(dir, 'ldap.key'), 'key!');
  mkdirSync(join(dir, 'sub'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('key=path, or the file name as key; sizes, never contents', () => {
    expect(parseFromFiles(['tls.crt=ldap.crt', 'ldap.key'], dir)).toEqual([
      { key: 'tls.crt', path: join(dir, 'ldap.crt'), bytes: 3 },
      { key: 'ldap.key', path: join(dir, 'ldap.key'), bytes: 4 },
    ]);
    expect(parseFromFiles('ldap.crt', dir)).toHaveLength(1);
  });

  it('a path may contain "=" after the first one', () => {
    writeFileSync(join(dir, 'a=b'), 'x');
    expect(parseFromFiles(['k=a=b'], dir)[0]).toMatchObject({ key: 'k', path: join(dir, 'a=b') });
  });

  it.each([
    [undefined, /--from-file KEY=PATH/],
    [['k='], /no file after/],
    [['=ldap.crt'], /key "" is not valid/],
    [['a b=ldap.crt'], /key "a b" is not valid/],
    [['.=ldap.crt'], /key "\." is not valid/],
    [[`${'k'.repeat(254)}=ldap.crt`], /is not valid/],
    [['k=sub'], /not a regular file/],
    [['k=missing'], /no such file/],
    [['k=ldap.crt', 'k=ldap.key'], /given twice/],
  ])('refuses %j', (spec, re) => {
    expect(() => parseFromFiles(spec, dir)).toThrow(re);
  });
});

describe('renderServiceTemplate', () => {
  it('ships Dockerfile, deployment, service and policy, with the name filled in and valid manifests', () => {
    const files = renderServiceTemplate('wiki');
    expect(files.map((f) => f.name)).toEqual(['Dockerfile', 'deployment.yaml', 'policy.yaml', 'service.yaml']);
    for (const f of files) expect(f.content).not.toContain('{{');
    expect(files.find((f) => f.name === 'deployment.yaml')?.content).toMatch(/^\s+image: wiki$/m);
    expect(files.find((f) => f.name === 'policy.yaml')?.content).toContain("selector: app == 'wiki'");
    expect(readdirSync(templateDir())).toContain('Dockerfile');
  });

  it.each(['mail;reboot', '$(id)', '../x', '', 'a'.repeat(64), 'Wiki', 'wikí', '-wiki', 'wiki-'])('refuses %j', (name) => {
    expect(() => renderServiceTemplate(name)).toThrow(/service name/);
  });
});

describe('parseTimeout and mapLimit', () => {
  it('parseTimeout: whole seconds from 1 to 86400', () => {
    expect(parseTimeout(undefined)).toBeUndefined();
    expect(parseTimeout('300')).toBe(300);
    for (const bad of ['0', '86401', '1.5', '-3', 'ten', '', '1e3', '$(id)']) expect(() => parseTimeout(bad), bad).toThrow(/--timeout/);
  });

  it('mapLimit keeps order and the limit', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, n * 3));
      running--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(peak).toBe(2);
  });
});
