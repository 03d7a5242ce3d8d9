import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { engineTarget } from '../../../src/images/engine-target.js';

describe('the Docker engine enssib talks to', () => {
  it('the default socket without DOCKER_HOST', () => {
    const t = engineTarget({ HOME: '/nonexistent' });
    expect(t.describe).toBe('unix:///var/run/docker.sock');
    expect(t.options.socketPath).toBe('/var/run/docker.sock');
  });

  it('DOCKER_HOST unix:// and tcp://', () => {
    expect(engineTarget({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' }).options.socketPath).toBe('/run/user/1000/docker.sock');
    const tcp = engineTarget({ DOCKER_HOST: 'tcp://127.0.0.1:2375' });
    expect(tcp.options).toMatchObject({ host: '127.0.0.1', port: 2375, protocol: 'http' });
    expect(tcp.describe).toBe('tcp://127.0.0.1:2375');
  });

  it('TLS with DOCKER_TLS_VERIFY reads the client certificates, and says which are missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-dcert-'));
    expect(() => engineTarget({ DOCKER_HOST: 'tcp://127.0.0.1:2376', DOCKER_CERT_PATH: dir })).toThrow(/needs TLS, but .*\{ca,cert,key\}\.pem cannot be read/);
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, f), f);
    const t = engineTarget({ DOCKER_HOST: 'tcp://127.0.0.1:2376', DOCKER_CERT_PATH: dir });
    expect(t.options).toMatchObject({ protocol: 'https', port: 2376 });
    expect(String(t.options.ca)).toBe('ca.pem');
  });

  it('refuses what it cannot talk to', () => {
    expect(() => engineTarget({ DOCKER_HOST: 'ssh://user@host' })).toThrow(/unix:\/\/ or tcp:\/\/ only/);
    expect(() => engineTarget({ DOCKER_HOST: 'tcp://[bad' })).toThrow(/not an engine address/);
  });
});
