import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Credentials, dockerConfigCredentials, registryCredentials } from '../../../src/images/credentials.js';
import { parseInventory } from '../../../src/inventory/load.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

const HOST = 'registry.cluster.enssib.fr:5000';

function dockerConfig(content: unknown): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-dc-'));
  writeFileSync(join(dir, 'config.json'), typeof content === 'string' ? content : JSON.stringify(content));
  return { DOCKER_CONFIG: dir, HOME: dir };
}

describe('registry credentials', () => {
  it('the password never shows in JSON, inspect or string form', () => {
    const c = new Credentials('deploy', 's3cr3t-pw', '/etc/enssib/registry.pw');
    expect(JSON.stringify({ c })).not.toContain('s3cr3t-pw');
    expect(inspect(c)).not.toContain('s3cr3t-pw');
    expect(inspect({ nested: [c] }, { depth: 5 })).not.toContain('s3cr3t-pw');
    expect(String(c)).not.toContain('s3cr3t-pw');
    expect(Object.keys(c)).not.toContain('password');
    expect({ ...c }).not.toHaveProperty('password');
    expect(c.password).toBe('s3cr3t-pw');
    expect(c.basic()).toBe(`Basic ${Buffer.from('deploy:s3cr3t-pw').toString('base64')}`);
  });

  it('from ~/.docker/config.json auths, with the key as docker login writes it', () => {
    for (const key of [HOST, `https://${HOST}`, `https://${HOST}/v1/`]) {
      const env = dockerConfig({ auths: { [key]: { auth: Buffer.from('deploy:pa:ss').toString('base64') } } });
      const got = dockerConfigCredentials(HOST, env).credentials;
      expect(got?.username).toBe('deploy');
      expect(got?.password).toBe('pa:ss');
    }
  });

  it('another registry\'s entry is not used; none at all is not an error', () => {
    const env = dockerConfig({ auths: { 'other.example:5000': { auth: Buffer.from('a:b').toString('base64') } } });
    expect(dockerConfigCredentials(HOST, env)).toEqual({});
    expect(dockerConfigCredentials(HOST, { DOCKER_CONFIG: join(tmpdir(), 'enssib-no-such-dir') })).toEqual({});
  });

  it('a credential helper is named in a hint, not called', () => {
    const env = dockerConfig({ credsStore: 'pass' });
    const r = dockerConfigCredentials(HOST, env);
    expect(r.credentials).toBeUndefined();
    expect(r.hint).toContain('docker-credential-pass');
  });

  it('a broken config.json is a configuration error', () => {
    expect(() => dockerConfigCredentials(HOST, dockerConfig('{not json'))).toThrow(/not valid JSON/);
    const bad = dockerConfig({ auths: { [HOST]: { auth: Buffer.from('nocolon').toString('base64') } } });
    expect(() => dockerConfigCredentials(HOST, bad)).toThrow(/not base64 of "user:password"/);
  });

  it('the inventory\'s registry.auth comes first; its password file is read without the final newline', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-inv-'));
    mkdirSync(join(dir, 'secrets'));
    writeFileSync(join(dir, 'secrets', 'registry.pw'), 'from-file\n');
    const text = VALID_INVENTORY.replace(
      'registry: { host: registry.cluster.enssib.fr:5000, ca: certs/enssib-ca.crt }',
      'registry: { host: registry.cluster.enssib.fr:5000, auth: { username: ci, passwordFile: secrets/registry.pw } }',
    );
    const inv = parseInventory(text, join(dir, 'inventory.yaml'), {});
    const env = dockerConfig({ auths: { [HOST]: { auth: Buffer.from('other:pw').toString('base64') } } });
    const c = registryCredentials(inv, env).credentials;
    expect(c?.username).toBe('ci');
    expect(c?.password).toBe('from-file');
    expect(c?.source).toBe(join(dir, 'secrets', 'registry.pw'));
  });

  it('a missing or empty password file is a configuration error naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-inv-'));
    const text = VALID_INVENTORY.replace(
      'registry: { host: registry.cluster.enssib.fr:5000, ca: certs/enssib-ca.crt }',
      'registry: { host: registry.cluster.enssib.fr:5000, auth: { username: ci, passwordFile: pw } }',
    );
    const inv = parseInventory(text, join(dir, 'inventory.yaml'), {});
    expect(() => registryCredentials(inv, {})).toThrow(/registry\.auth\.passwordFile: cannot read .*pw \(ENOENT\)/);
    writeFileSync(join(dir, 'pw'), '\n');
    expect(() => registryCredentials(inv, {})).toThrow(/password file is empty/);
  });
});
