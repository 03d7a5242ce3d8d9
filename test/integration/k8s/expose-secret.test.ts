/**
 * `service expose` (keepalived-vip ConfigMap) and `secret create` against the
 * Kubernetes STAND-IN API server.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { standInSite } from '../../support/kube-stand-in/fixture.js';
import { makeSite, siteContext, writeService } from '../../support/kube-stand-in/harness.js';
import { exposeCommand, exposeService } from '../../../src/services/expose.js';
import { createSecret, secretCreateCommand } from '../../../src/services/secret.js';
import type { Obj } from '../../support/kube-stand-in/fields.js';

const env = standInSite();

const vipData = () => (env.standIn.object('v1', 'ConfigMap', 'kube-system', 'vip-configmap')?.data ?? null) as Record<string, string> | null;

describe('service expose (stand-in)', () => {
  it('records namespace/service under the address; a second service on the same address joins a comma-separated list', async () => {
    writeService(env.site, 'www');
    writeService(env.site, 'webmail');
    env.standIn.seed({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'vip-configmap', namespace: 'kube-system' }, data: { '192.168.66.30': 'default/radius' } });
    const a = siteContext(env.site);
    expect(await exposeCommand(a.ctx, { args: ['www'], opts: { ip: '192.168.66.20' } })).toBe(0);
    expect(vipData()).toEqual({ '192.168.66.30': 'default/radius', '192.168.66.20': 'default/www' });
    expect(a.stdout()).toContain('192.168.66.20 → default/www');

    const r = await exposeService(siteContext(env.site).ctx, 'webmail', '192.168.66.20');
    expect(r).toMatchObject({ changed: true, entries: ['default/www', 'default/webmail'] });
    expect(vipData()).toEqual({ '192.168.66.30': 'default/radius', '192.168.66.20': 'default/www,default/webmail' });

    // again: nothing to do, nothing written
    const rv = (env.standIn.object('v1', 'ConfigMap', 'kube-system', 'vip-configmap')?.metadata as Obj).resourceVersion;
    const again = await exposeService(siteContext(env.site).ctx, 'webmail', '192.168.66.20');
    expect(again.changed).toBe(false);
    expect((env.standIn.object('v1', 'ConfigMap', 'kube-system', 'vip-configmap')?.metadata as Obj).resourceVersion).toBe(rv);
    // applied server-side by enssib, with the resourceVersion read as a precondition
    const cm = env.standIn.object('v1', 'ConfigMap', 'kube-system', 'vip-configmap') as Obj;
    expect(((cm.metadata as Obj).managedFields as Obj[]).map((m) => m.manager)).toContain('enssib');
  });

  it('creates the ConfigMap when it does not exist yet', async () => {
    writeService(env.site, 'ldap');
    env.standIn.remove('v1', 'ConfigMap', 'kube-system', 'vip-configmap');
    await exposeService(siteContext(env.site).ctx, 'ldap', '192.168.66.21');
    expect(vipData()).toEqual({ '192.168.66.21': 'default/ldap' });
  });

  it('a client dry run says what it would do and contacts nothing', async () => {
    writeService(env.site, 'www');
    const before = env.standIn.requests.length;
    const { ctx, stdout } = siteContext(env.site, { dryRun: 'client' });
    expect(await exposeCommand(ctx, { args: ['www'], opts: { ip: '192.168.66.22' } })).toBe(0);
    expect(stdout()).toContain('would add default/www to key 192.168.66.22 of ConfigMap kube-system/vip-configmap');
    expect(env.standIn.requests.length).toBe(before);
  });

  it.each([
    ['', /missing address/],
    ['192.168.66', /not an IPv4 address/],
    ['192.168.66.300', /not an IPv4 address/],
    ['$(id)', /not an IPv4 address/],
    ['10.100.1.5', /inside the pods network 10\.100\.0\.0\/16/],
    ['10.101.0.9', /inside the services network/],
    ['10.66.6.10', /inside the cluster network/],
    ['127.0.0.1', /loopback/],
    ['0.0.0.0', /unspecified/],
    ['١٩٢.١٦٨.٦٦.٢٠', /not an IPv4 address/],
  ])('refuses --ip %j', async (ip, why) => {
    writeService(env.site, 'www');
    await expect(exposeService(siteContext(env.site).ctx, 'www', ip)).rejects.toThrow(why);
  });

  it('refuses without keepalivedVip in the inventory, and for a folder without a Service', async () => {
    const noVip = makeSite(env.standIn, { keepalived: false });
    writeService(noVip, 'www');
    await expect(exposeService(siteContext(noVip).ctx, 'www', '192.168.66.20')).rejects.toThrow(/no keepalivedVip section/);
    noVip.cleanup();
    writeService(env.site, 'batch');
    const { rmSync } = await import('node:fs');
    rmSync(join(env.site.services, 'batch', 'service.yaml'));
    await expect(exposeService(siteContext(env.site).ctx, 'batch', '192.168.66.20')).rejects.toThrow(/no Service object/);
  });
});

describe('secret create (stand-in)', () => {
  const MARK = 'PRIVATE-KEY-MATERIAL-7f3a9c';
  const files = () => {
    writeFileSync(join(env.site.dir, 'ldap.crt'), `-----BEGIN CERTIFICATE-----\n${MARK}-crt\n-----END CERTIFICATE-----\n`);
    writeFileSync(join(env.site.dir, 'ldap.key'), `-----BEGIN PRIVATE KEY-----\n${MARK}-key\n-----END PRIVATE KEY-----\n`);
  };

  it('creates then updates a Secret; its contents never reach stdout, stderr, -o json or the journal', async () => {
    files();
    for (const output of ['text', 'json'] as const) {
      const { ctx, stdout, stderr } = siteContext(env.site, { output, verbose: true });
      expect(await secretCreateCommand(ctx, { args: ['cert-ldap'], opts: { fromFile: ['tls.crt=ldap.crt', 'tls.key=ldap.key'] } })).toBe(0);
      const shown = stdout() + stderr();
      expect(shown).not.toContain(MARK);
      expect(shown).not.toContain(Buffer.from(`${MARK}-key`).toString('base64').slice(0, 12));
      expect(shown).not.toContain(readFileSync(join(env.site.dir, 'ldap.key')).toString('base64').slice(0, 40));
    }
    const s = env.standIn.object('v1', 'Secret', 'default', 'cert-ldap') as Obj;
    expect(Buffer.from(String((s.data as Obj)['tls.key']), 'base64').toString()).toContain(`${MARK}-key`);
    expect(s.type).toBe('Opaque');
    const journal = readFileSync(env.site.journal, 'utf8');
    expect(journal).toContain('apply v1 Secret default/cert-ldap');
    expect(journal).not.toContain(MARK);
    expect(journal).not.toContain(readFileSync(join(env.site.dir, 'ldap.key')).toString('base64').slice(0, 40));

    // update: a key replaced, one removed (the set of keys is what enssib applied last)
    writeFileSync(join(env.site.dir, 'ldap.key'), 'new key\n');
    const r = await createSecret(siteContext(env.site).ctx, 'cert-ldap', ['tls.key=ldap.key']);
    expect(r.action).toBe('configured');
    const s2 = env.standIn.object('v1', 'Secret', 'default', 'cert-ldap') as Obj;
    expect(Object.keys(s2.data as Obj)).toEqual(['tls.key']);
    const same = await createSecret(siteContext(env.site).ctx, 'cert-ldap', ['tls.key=ldap.key']);
    expect(same.action).toBe('unchanged');
  });

  it('the key defaults to the file name; --type kubernetes.io/tls needs tls.crt and tls.key; --namespace', async () => {
    files();
    const r = await createSecret(siteContext(env.site).ctx, 'ca-bundle', ['ldap.crt'], { namespace: 'kube-system' });
    expect(r).toMatchObject({ namespace: 'kube-system', keys: [{ key: 'ldap.crt' }], action: 'created' });
    await expect(createSecret(siteContext(env.site).ctx, 'tls-ldap', ['ldap.crt'], { type: 'kubernetes.io/tls' })).rejects.toThrow(/needs the keys tls.crt and tls.key/);
    const t = await createSecret(siteContext(env.site).ctx, 'tls-ldap', ['tls.crt=ldap.crt', 'tls.key=ldap.key'], { type: 'kubernetes.io/tls' });
    expect(t.action).toBe('created');
    expect((env.standIn.object('v1', 'Secret', 'default', 'tls-ldap') as Obj).type).toBe('kubernetes.io/tls');
  });

  it('a client dry run reads the files (sizes only) and contacts nothing', async () => {
    files();
    const before = env.standIn.requests.length;
    const { ctx, stdout } = siteContext(env.site, { dryRun: 'client' });
    expect(await secretCreateCommand(ctx, { args: ['cert-ldap'], opts: { fromFile: ['tls.crt=ldap.crt'] } })).toBe(0);
    expect(stdout()).toMatch(/would apply v1 Secret default\/cert-ldap .* with tls\.crt \(\d+ bytes\)/);
    expect(stdout()).not.toContain(MARK);
    expect(env.standIn.requests.length).toBe(before);
  });

  it.each([
    ['mail;reboot', /not valid/],
    ['$(id)', /not valid/],
    ['../x', /not valid/],
    ['', /empty/],
    ['A'.repeat(10), /not valid/],
    ['é-cert', /not valid/],
    ['a'.repeat(254), /at most 253/],
  ])('refuses the Secret name %j before reading any file', async (name, why) => {
    await expect(createSecret(siteContext(env.site).ctx, name, ['tls.crt=/etc/shadow'])).rejects.toThrow(why);
  });

  it.each([
    [[], /--from-file KEY=PATH/],
    [['tls.crt='], /no file after "="/],
    [['=x'], /key "" is not valid/],
    [['a;b=x'], /key "a;b" is not valid/],
    [['$(id)=x'], /key "\$\(id\)" is not valid/],
    [['../k=x'], /key "..\/k" is not valid/],
    [['..=x'], /key "\.\." is not valid/],
    [['ключ=x'], /not valid/],
    [['a=nope'], /no such file/],
    [['a=.'], /not a regular file/],
  ])('refuses --from-file %j', async (spec, why) => {
    files();
    await expect(createSecret(siteContext(env.site).ctx, 'cert-x', spec)).rejects.toThrow(why);
  });

  it('refuses a key given twice and files above 1 MiB', async () => {
    files();
    await expect(createSecret(siteContext(env.site).ctx, 'cert-x', ['a=ldap.crt', 'a=ldap.key'])).rejects.toThrow(/given twice/);
    writeFileSync(join(env.site.dir, 'big'), Buffer.alloc(1024 * 1024 + 1));
    await expect(createSecret(siteContext(env.site).ctx, 'cert-x', ['big=big'])).rejects.toThrow(/more than 1 MiB/);
  });
});
