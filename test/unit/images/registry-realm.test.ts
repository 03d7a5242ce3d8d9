/**
 * The registry's token flow sends the Basic credentials only to a realm on the
 * registry's own host, or over https to a host the inventory names. A local
 * https server (certificate made with openssl for 127.0.0.1 and localhost)
 * plays a registry whose 401 names the realm.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Credentials } from '../../../src/images/credentials.js';
import { RegistryClient } from '../../../src/images/registry.js';

const dir = mkdtempSync(join(tmpdir(), 'enssib-realm-'));
let server: Server;
let port = 0;
let realm = '';
const basicSeen: string[] = [];
let cert: Buffer;

beforeAll(async () => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  cert = readFileSync(join(dir, 'cert.pem'));
  server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
    if (req.url?.startsWith('/token')) {
      basicSeen.push(req.headers.authorization ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'tok' }));
      return;
    }
    if (req.headers.authorization === 'Bearer tok') {
      res.writeHead(200).end('{}');
      return;
    }
    res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="registry"` }).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const creds = new Credentials('deploy', 's3cret', 'test');
const client = (namedHosts?: string[]) => new RegistryClient({ host: `127.0.0.1:${port}`, ca: cert, credentials: creds, ...(namedHosts ? { namedHosts } : {}) });

describe('the registry token flow: where the credentials may go', () => {
  it('a realm on the registry itself gets them (over https)', async () => {
    realm = `https://127.0.0.1:${port}/token`;
    basicSeen.length = 0;
    const c = client();
    await c.ping();
    c.close();
    expect(basicSeen).toEqual([creds.basic()]);
  });

  it('a realm on another host is refused unless the inventory names that host', async () => {
    realm = `https://localhost:${port}/token`;
    basicSeen.length = 0;
    const c = client(['node01', '10.66.6.21']);
    await expect(c.ping()).rejects.toThrow(`registry 127.0.0.1:${port} points its token requests at https://localhost:${port}, which is neither the registry nor a host the inventory names: the credentials of user "deploy" were not sent`);
    c.close();
    expect(basicSeen).toEqual([]);
    const named = client(['localhost']);
    await named.ping();
    named.close();
    expect(basicSeen).toEqual([creds.basic()]);
  });

  it('a realm over plain http is refused, even on the registry host', async () => {
    realm = `http://127.0.0.1:${port}/token`;
    basicSeen.length = 0;
    const c = client(['127.0.0.1']);
    await expect(c.ping()).rejects.toThrow(/points its token requests at http:\/\/127\.0\.0\.1:\d+, which is not https: the credentials of user "deploy" were not sent/);
    c.close();
    realm = 'https://evil.example/token';
    const d = client();
    await expect(d.ping()).rejects.toThrow(/neither the registry nor a host the inventory names/);
    d.close();
    expect(basicSeen).toEqual([]);
  });
});
