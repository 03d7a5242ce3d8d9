import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { engineHas, json, makeSite, nonce, registryApi, registryLab, type ImageRunJson } from '../../support/images.js';
import type { CliResult } from '../../support/cli.js';

/**
 * Every bad input of the images issue: a clear error, a non-zero exit, and
 * never the registry password in what is printed.
 */

function scratchService() {
  return { Dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\n', 'a.txt': nonce() };
}

function noSecret(r: CliResult) {
  const lab = registryLab();
  expect(r.stdout).not.toContain(lab.password);
  expect(r.stderr).not.toContain(lab.password);
  expect(r.stderr).not.toMatch(/\n\s+at .*\(.*\.js:\d+:\d+\)/); // no stack trace
}

/** A TCP port on the lab address where nothing listens. */
async function deadPort(address: string): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, address, resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe('bad service input', () => {
  it('a missing service folder', async () => {
    const site = makeSite({ real: scratchService() });
    const r = await site.run(['image', 'push', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no service "nope"');
    expect(r.stderr).toContain('Services: real');
    noSecret(r);
  });

  it('a service folder without a Dockerfile', async () => {
    const site = makeSite({ nodf: { 'a.txt': 'x\n' } });
    const r = await site.run(['image', 'build', 'nodf']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('service "nodf" has no Dockerfile');
    expect(r.stderr).toContain(join('services', 'nodf', 'Dockerfile'));
  });

  it('a Dockerfile syntax error names the file and line', async () => {
    const site = makeSite({ syn: { Dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\nFROBNICATE now\n', 'a.txt': nonce() } });
    const r = await site.run(['image', 'push', 'syn']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/syn: Dockerfile syntax error at services\/syn\/Dockerfile:3: unknown instruction: FROBNICATE/i);
    expect(r.stderr).toContain('3 | FROBNICATE now');
    noSecret(r);
  });

  it('a RUN that exits 1: the failing instruction and the last lines of its output', async () => {
    const lab = registryLab();
    const site = makeSite({
      boom: {
        Dockerfile: `FROM ${lab.baseImage}\nRUN echo fine\nRUN echo about to fail; echo on stderr >&2; exit 1\nCOPY a.txt /a.txt\n`,
        'a.txt': nonce(),
      },
    });
    const r = await site.run(['image', 'push', 'boom']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('boom: the build failed at step 3/');
    expect(r.stderr).toMatch(/failing instruction \(step 3\/\d+, services\/boom\/Dockerfile:3\): RUN echo about to fail; echo on stderr >&2; exit 1/);
    expect(r.stderr).toContain("returned a non-zero code: 1");
    // stdout and stderr of the step, in whatever order the engine interleaved them.
    const tailLines = r.stderr.slice(r.stderr.indexOf('last lines of output:')).split('\n').slice(1, 3).map((l) => l.trim());
    expect(tailLines.sort()).toEqual(['about to fail', 'on stderr']);
    noSecret(r);

    const j = json<ImageRunJson>(await site.run(['-o', 'json', 'image', 'push', 'boom']));
    expect(j.exitCode).toBe(1);
    expect(j.images).toEqual([]);
    expect(j.failed[0]?.service).toBe('boom');
    expect(j.failed[0]?.details.join('\n')).toContain('about to fail');
  });

  it('one failing service among several: the others are done, exit 3', async () => {
    const lab = registryLab();
    const site = makeSite({
      good: scratchService(),
      bad: { Dockerfile: `FROM ${lab.baseImage}\nRUN exit 1\n` },
    });
    const r = await site.run(['-o', 'json', 'image', 'push', 'good', 'bad']);
    expect(r.code).toBe(3);
    const j = json<ImageRunJson>(r);
    expect(j.images.map((i) => i.service)).toEqual(['good']);
    expect(j.failed.map((f) => f.service)).toEqual(['bad']);
  });

  const hostile = ['mail;reboot', '$(id)', '../x', '', 'a'.repeat(64), 'Mail', 'mail_1', 'mäil', '-mail', 'mail-', 'a b', '.', 'x/y'];
  for (const name of hostile) {
    it(`refuses the service name ${JSON.stringify(name.length > 20 ? `${name.slice(0, 20)}…` : name)} before contacting anything`, async () => {
      const site = makeSite({ real: scratchService() });
      for (const cmd of [['image', 'build'], ['image', 'push'], ['image', 'list']]) {
        // An engine that cannot answer: a validation error must come first.
        const r = await site.run([...cmd, '--', name], { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
        expect(r.code, `${cmd.join(' ')} ${name}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(/service name .*(is not valid|is empty|characters long)/);
        expect(r.stderr).not.toContain('Docker engine');
        expect(r.stderr).not.toContain('registry');
      }
    });
  }

  it('--all together with names, and no service at all, are usage errors', async () => {
    const site = makeSite({ real: scratchService() });
    const both = await site.run(['image', 'push', '--all', 'real']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('not both');
    const none = await site.run(['image', 'build']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no service given');
  });
});

describe('bad registry', () => {
  it('a registry that is down', async () => {
    const lab = registryLab();
    const port = await deadPort(lab.address);
    const site = makeSite({ down: scratchService() }, (t) => t.replace(`host: ${lab.host}`, `host: ${lab.name}:${port}`));
    const r = await site.run(['image', 'push', 'down']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`registry ${lab.name}:${port} does not answer (connection refused)`);
    noSecret(r);
  });

  it('a registry whose certificate the inventory CA does not sign', async () => {
    const lab = registryLab();
    const site = makeSite({ rogue: scratchService() }, (t) => t.replace(`host: ${lab.host}`, `host: ${lab.name}:${lab.roguePort}`));
    const r = await site.run(['image', 'push', 'rogue']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`registry ${lab.name}:${lab.roguePort}: its TLS certificate is not signed by the CA in ${lab.caFile}`);
    noSecret(r);
  });

  it('a registry the engine has no CA for: enssib says which file to install where', async () => {
    const lab = registryLab();
    const host = `${lab.name}:${lab.untrustedPort}`;
    const site = makeSite({ untrusted: scratchService() }, (t) => t.replace(`host: ${lab.host}`, `host: ${host}`));
    const r = await site.run(['image', 'push', 'untrusted']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the Docker engine does not trust the TLS certificate of registry ${host}`);
    expect(r.stderr).toContain(`copy ${lab.caFile} to /etc/docker/certs.d/${host}/ca.crt`);
    expect(r.stderr).toMatch(/x509|unknown authority/);
    noSecret(r);
  });

  it('wrong credentials are refused before anything is built', async () => {
    const lab = registryLab();
    const dir = mkdtempSync(join(tmpdir(), 'enssib-pw-'));
    const wrong = join(dir, 'wrong-password');
    writeFileSync(wrong, 'not-the-password\n');
    const site = makeSite({ creds: scratchService() }, (t) => t.replace(lab.passwordFile, wrong));
    const r = await site.run(['-o', 'json', 'image', 'push', 'creds']);
    expect(r.code).toBe(1);
    const j = json<ImageRunJson>(r);
    expect(j.failed[0]?.message).toContain(`refused the credentials of user "${lab.username}" (from ${wrong})`);
    expect(r.stdout).not.toContain('not-the-password');
    expect(r.stderr).not.toContain('not-the-password');
    const t = await site.run(['image', 'push', 'creds']);
    expect(t.stderr).toContain('refused the credentials');
    expect(t.stderr).not.toMatch(/Step \d/);
    expect(t.stderr).not.toContain('not-the-password');
    // Nothing was built.
    const tag = json<ImageRunJson>(await site.run(['-o', 'json', '--dry-run', 'image', 'push', 'creds'])).images[0]?.tag;
    expect(engineHas(`${lab.host}/creds:${tag}`)).toBe(false);
    expect((await registryApi('HEAD', `/v2/creds/manifests/${tag}`)).status).toBe(404);
  });
});

describe('bad engine', () => {
  it('a Docker engine that is not running', async () => {
    const site = makeSite({ noengine: scratchService() });
    const sock = join(mkdtempSync(join(tmpdir(), 'enssib-dead-')), 'docker.sock');
    const r = await site.run(['image', 'push', 'noengine'], { DOCKER_HOST: `unix://${sock}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the Docker engine at unix://${sock} is not running or does not answer`);
    expect(r.stderr).toContain('DOCKER_HOST');
    noSecret(r);
  });
});
