import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, StreamError } from '../../../src/images/engine.js';
import { OperationError } from '../../../src/errors.js';

/**
 * The engine's ping and image inspection are plain HTTP on its socket (no
 * dockerode). A stand-in for the Docker engine API on a unix socket answers
 * them as dockerd does: GET /_ping, GET /images/{name}/json.
 */
describe('the Docker engine API without dockerode (a stand-in engine on a unix socket)', () => {
  const socket = join(mkdtempSync(join(tmpdir(), 'enssib-engine-')), 'docker.sock');
  const seen: string[] = [];
  let server: Server;

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url === '/_ping') return res.end('OK');
      const m = /^\/images\/(.+)\/json$/.exec(req.url ?? '');
      const name = m ? decodeURIComponent(m[1] as string) : '';
      res.setHeader('content-type', 'application/json');
      if (name === 'registry.example:5000/site/ldap:0a9fe0697952') return res.end(JSON.stringify({ Id: 'sha256:feed', RepoTags: [name] }));
      if (name === 'broken:1') return res.writeHead(500).end(JSON.stringify({ message: 'layer store is corrupt' }));
      if (name === 'odd:1') return res.end(JSON.stringify({ RepoTags: [name] }));
      res.writeHead(404).end(JSON.stringify({ message: `No such image: ${name}` }));
    });
    await new Promise<void>((r) => server.listen(socket, r));
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('pings the engine, then gives the ID of an image it has and null for one it lacks', async () => {
    const e = await Engine.connect({ DOCKER_HOST: `unix://${socket}` });
    expect(seen).toContain('GET /_ping');
    await expect(e.imageId('registry.example:5000/site/ldap:0a9fe0697952')).resolves.toBe('sha256:feed');
    expect(seen).toContain('GET /images/registry.example:5000/site/ldap:0a9fe0697952/json');
    await expect(e.imageId('debian:12')).resolves.toBeNull();
  });

  it("says the engine's own words for any other answer, and a reference never turns into a query string", async () => {
    const e = await Engine.connect({ DOCKER_HOST: socket });
    await expect(e.imageId('broken:1')).rejects.toThrow(new StreamError('the Docker engine answered HTTP 500: layer store is corrupt'));
    await expect(e.imageId('odd:1')).rejects.toThrow(/described odd:1 without an image ID/);
    await expect(e.imageId('a b?c#d')).resolves.toBeNull();
    expect(seen).toContain('GET /images/a%20b%3Fc%23d/json');
  });

  it('an engine that is not there is said in the user\'s terms', async () => {
    const err = await Engine.connect({ DOCKER_HOST: `unix://${socket}.missing` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationError);
    expect((err as OperationError).message).toBe(`the Docker engine at unix://${socket}.missing is not running or does not answer (ENOENT)`);
  });
});
