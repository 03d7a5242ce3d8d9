import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createContext, type GlobalOptions } from '../../../src/context.js';
import { UsageError } from '../../../src/errors.js';
import { ensureImages } from '../../../src/images/usecases.js';
import { fileInventory } from '../../../src/inventory/load.js';
import { createOutput } from '../../../src/ui/output.js';
import { createPrompter } from '../../../src/ui/prompt.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

function sink() {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

function site(services: Record<string, Record<string, string>>): string {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-uc-'));
  // A registry name that resolves nowhere and an engine socket that does not exist:
  // a client dry run must not need either.
  writeFileSync(join(dir, 'inventory.yaml'), VALID_INVENTORY.replace('registry.cluster.enssib.fr:5000', 'registry.invalid:5000'));
  for (const [svc, files] of Object.entries(services)) {
    for (const [p, c] of Object.entries(files)) {
      mkdirSync(join(dir, 'services', svc), { recursive: true });
      writeFileSync(join(dir, 'services', svc, p), c);
    }
  }
  return dir;
}

function ctxFor(dir: string, dryRun: GlobalOptions['dryRun'], env: NodeJS.ProcessEnv = { DOCKER_HOST: 'unix:///nonexistent/enssib-test.sock' }) {
  const err = sink();
  const out = sink();
  const opts: GlobalOptions = { inventory: join(dir, 'inventory.yaml'), dryRun, yes: false, output: 'text', concurrency: 2, color: false, verbose: false };
  const ctx = createContext({
    opts,
    out: createOutput({ format: 'text', color: false, verbose: false, stdout: out.stream, stderr: err.stream }),
    prompt: createPrompter({ yes: false, isTTY: false }),
    env: { ...env, HOME: dir },
    cwd: dir,
    inventory: fileInventory(join(dir, 'inventory.yaml'), { HOME: dir }),
    hosts: () => {
      throw new Error('image work must not open ssh connections');
    },
  });
  return { ctx, stderr: err.text };
}

describe('ensureImages in a client dry run', () => {
  it('computes the content tags locally and contacts nothing (no engine, no registry)', async () => {
    const dir = site({
      ldap: { Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'x' },
      mail: { Dockerfile: 'FROM debian:12\nCOPY a /a\n', a: 'y', 'enssib.yaml': 'image: site/mail\n' },
    });
    const { ctx } = ctxFor(dir, 'client');
    const images = await ensureImages(ctx, ['ldap', 'mail'], { build: true, push: true });
    expect(images.map((i) => [i.service, i.name, i.status])).toEqual([
      ['ldap', 'ldap', 'planned'],
      ['mail', 'site/mail', 'planned'],
    ]);
    expect(images[0]?.reference).toBe(`registry.invalid:5000/ldap:${images[0]?.tag}`);
    expect(images[0]?.tag).toMatch(/^[0-9a-f]{20}$/);
    expect(images[0]?.digest).toBeUndefined();
    expect(images[1]?.note).toContain('debian:12');
    // Same content, same tag: deterministic.
    const again = await ensureImages(ctxFor(dir, 'client').ctx, ['ldap'], { build: false, push: true });
    expect(again[0]?.tag).toBe(images[0]?.tag);
  });

  it('validates names and folders before anything', async () => {
    const dir = site({ ldap: { Dockerfile: 'FROM scratch\n' }, nodf: { a: 'x' } });
    const { ctx } = ctxFor(dir, 'client');
    await expect(ensureImages(ctx, ['ldap', 'bad;name'], { build: true, push: true })).rejects.toThrow(/service name "bad;name" is not valid/);
    await expect(ensureImages(ctx, ['ghost'], { build: true, push: true })).rejects.toThrow(/no service "ghost"/);
    await expect(ensureImages(ctx, ['nodf'], { build: true, push: true })).rejects.toThrow(/service "nodf" has no Dockerfile/);
    await expect(ensureImages(ctx, [], { build: true, push: true })).rejects.toThrow(/no service given/);
  });

  it('a real run: the inventory CA file must be readable', async () => {
    const dir = site({ ldap: { Dockerfile: 'FROM scratch\n' } });
    await expect(ensureImages(ctxFor(dir, false).ctx, ['ldap'], { build: true, push: true })).rejects.toThrow(/registry\.ca: cannot read .*certs\/enssib-ca\.crt \(ENOENT\)/);
  });

  it('a real run with no engine: a clear error naming DOCKER_HOST', async () => {
    const dir = site({ ldap: { Dockerfile: 'FROM debian:12\n' } });
    mkdirSync(join(dir, 'certs'));
    writeFileSync(join(dir, 'certs', 'enssib-ca.crt'), '');
    const { ctx } = ctxFor(dir, false);
    await expect(ensureImages(ctx, ['ldap'], { build: true, push: true })).rejects.toThrow(
      /the Docker engine at unix:\/\/\/nonexistent\/enssib-test\.sock is not running or does not answer/,
    );
  });
});

describe('registry credentials and a Docker engine over plain TCP', () => {
  const withAuth = () => {
    const dir = site({ ldap: { Dockerfile: 'FROM debian:12\n' } });
    mkdirSync(join(dir, 'certs'));
    writeFileSync(join(dir, 'certs', 'enssib-ca.crt'), '');
    writeFileSync(join(dir, 'registry.pw'), 'S3CRET-registry\n');
    const inv = join(dir, 'inventory.yaml');
    writeFileSync(inv, readFileSync(inv, 'utf8').replace('ca: certs/enssib-ca.crt }', 'ca: certs/enssib-ca.crt, auth: { username: deploy, passwordFile: registry.pw } }'));
    return dir;
  };

  it('refuses DOCKER_HOST=tcp://…:2375 before anything is sent, unless --allow-insecure-engine', async () => {
    const dir = withAuth();
    const plain = { DOCKER_HOST: 'tcp://127.0.0.1:9' };
    const e = await ensureImages(ctxFor(dir, false, plain).ctx, ['ldap'], { build: true, push: true }).then(() => undefined, (x: unknown) => x as UsageError);
    expect(e).toBeInstanceOf(UsageError);
    expect(e?.message).toBe('the Docker engine at tcp://127.0.0.1:9 is reached over plain TCP: the registry password of user "deploy" would cross the network in clear');
    expect(e?.details.join(' ')).toContain('--allow-insecure-engine');
    // allowed: enssib goes on and meets the (absent) engine
    await expect(ensureImages(ctxFor(dir, false, plain).ctx, ['ldap'], { build: true, push: true, allowInsecureEngine: true })).rejects.toThrow(/the Docker engine at tcp:\/\/127\.0\.0\.1:9/);
  });

  it('a unix socket, or no credentials at all, is not refused', async () => {
    const dir = withAuth();
    await expect(ensureImages(ctxFor(dir, false).ctx, ['ldap'], { build: true, push: true })).rejects.toThrow(/the Docker engine at unix:\/\/\/nonexistent/);
    const open = site({ ldap: { Dockerfile: 'FROM debian:12\n' } });
    mkdirSync(join(open, 'certs'));
    writeFileSync(join(open, 'certs', 'enssib-ca.crt'), '');
    await expect(ensureImages(ctxFor(open, false, { DOCKER_HOST: 'tcp://127.0.0.1:9' }).ctx, ['ldap'], { build: true, push: true })).rejects.toThrow(/the Docker engine at tcp:\/\/127\.0\.0\.1:9/);
  });
});
