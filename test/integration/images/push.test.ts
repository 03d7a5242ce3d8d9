import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { docker, engineHas, json, makeSite, nonce, registryApi, registryLab, type ImageRunJson } from '../../support/images.js';

/**
 * `enssib image build|push|list` against the real Docker engine and the real
 * TLS registry of the images lab (test/support/setup-registry.ts).
 */

const dockerfile = 'FROM scratch\nCOPY hello.txt /hello.txt\nCOPY bin/run /run\n';

function helloService(extra: Record<string, string> = {}) {
  return {
    Dockerfile: dockerfile,
    'hello.txt': { content: `hello ${nonce()}`, mode: 0o664 },
    'bin/run': { content: '#!/bin/sh\necho run\n', mode: 0o755 },
    ...extra,
  };
}

/** `tar -tv` of an image's file system (through a container that never starts). */
function exported(ref: string): string {
  const container = docker('create', ref, '/nothing').trim();
  try {
    return execFileSync('sh', ['-c', 'docker export "$1" | tar -tvf - --numeric-owner', 'sh', container], { encoding: 'utf8' });
  } finally {
    docker('rm', container);
  }
}

async function tagOf(site: ReturnType<typeof makeSite>, svc: string): Promise<string> {
  const r = await site.run(['--dry-run', '-o', 'json', 'image', 'push', svc]);
  expect(r.code, r.stderr).toBe(0);
  const img = json<ImageRunJson>(r).images[0];
  expect(img?.status).toBe('planned');
  return img?.tag as string;
}

describe('image push: build and push land in the registry', () => {
  it('pushes a new image, returns the registry digest, and records the git commit as a label', async () => {
    const lab = registryLab();
    const site = makeSite({ web: helloService() });
    execFileSync('git', ['init', '-q', site.dir]);
    execFileSync('git', ['-C', site.dir, 'add', '.']);
    execFileSync('git', ['-C', site.dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'x']);
    const commit = execFileSync('git', ['-C', site.dir, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();

    const r = await site.run(['-o', 'json', 'image', 'push', 'web']);
    expect(r.code, r.stderr).toBe(0);
    const out = json<ImageRunJson>(r);
    const img = out.images[0];
    expect(img?.status).toBe('pushed');
    expect(img?.reference).toBe(`${lab.host}/web:${img?.tag}`);
    expect(img?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(img?.commit).toBe(commit);

    // The registry itself has it, under that digest.
    const head = await registryApi('HEAD', `/v2/web/manifests/${img?.tag}`);
    expect(head.status).toBe(200);
    expect(head.headers['docker-content-digest']).toBe(img?.digest);
    const tags = JSON.parse((await registryApi('GET', '/v2/web/tags/list', 'application/json')).body) as { tags: string[] };
    expect(tags.tags).toContain(img?.tag);

    // The image config carries the labels: service, tag and git commit.
    const manifest = JSON.parse((await registryApi('GET', `/v2/web/manifests/${img?.tag}`)).body) as { config: { digest: string }; layers: unknown[] };
    const config = JSON.parse((await registryApi('GET', `/v2/web/blobs/${manifest.config.digest}`, 'application/json')).body) as {
      config: { Labels: Record<string, string> };
    };
    expect(config.config.Labels['org.opencontainers.image.revision']).toBe(commit);
    expect(config.config.Labels['fr.enssib.service']).toBe('web');
    expect(config.config.Labels['fr.enssib.tag']).toBe(img?.tag);
    expect(manifest.layers).toHaveLength(2);

    // Modes reach the image as git records them: 0755 for the executable, 0644 for
    // hello.txt although it is 0664 on disk; owned by root.
    const listing = exported(img?.reference as string);
    expect(listing).toMatch(/^-rwxr-xr-x 0\/0 .* run$/m);
    expect(listing).toMatch(/^-rw-r--r-- 0\/0 .* hello\.txt$/m);
  });

  it('a second push of an unchanged service neither builds nor uploads', async () => {
    const site = makeSite({ api: helloService() });
    const first = await site.run(['-o', 'json', 'image', 'push', 'api']);
    expect(first.code, first.stderr).toBe(0);
    const one = json<ImageRunJson>(first).images[0];
    expect(one?.status).toBe('pushed');

    // Remove the local image: a build would recreate it, an upload would need it.
    docker('rmi', '-f', one?.reference as string);
    expect(engineHas(one?.reference as string)).toBe(false);
    const tagsBefore = (await registryApi('GET', '/v2/api/tags/list', 'application/json')).body;

    const second = await site.run(['image', 'push', 'api']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain('already in the registry');
    expect(second.stderr).not.toMatch(/Step \d+\/\d+/);
    expect(second.stderr).not.toContain('pushing');
    expect(second.stdout).toMatch(/api\s+present\s+/);
    expect(second.stdout).toContain(one?.digest);
    expect(engineHas(one?.reference as string)).toBe(false);
    expect((await registryApi('GET', '/v2/api/tags/list', 'application/json')).body).toBe(tagsBefore);

    // Same with -o json: status present, same digest.
    const third = json<ImageRunJson>(await site.run(['-o', 'json', 'image', 'push', 'api']));
    expect(third.images[0]).toMatchObject({ status: 'present', digest: one?.digest, tag: one?.tag });
  });

  it('changing one byte of one file changes the tag; a .dockerignored file and the raw mode do not', async () => {
    const site = makeSite({ tags: { ...helloService(), '.dockerignore': 'notes.md\n*.log\n', 'notes.md': 'draft\n', 'debug.log': 'x\n' } });
    const t0 = await tagOf(site, 'tags');
    expect(await tagOf(site, 'tags')).toBe(t0);

    // Ignored files: edited, added, removed — same tag.
    site.write('tags', { 'notes.md': 'draft 2, much longer\n', 'more.log': 'y\n' });
    expect(await tagOf(site, 'tags')).toBe(t0);

    // Raw mode bits beyond the executable bit follow the umask: not part of the tag.
    chmodSync(join(site.dir, 'services/tags/hello.txt'), 0o664);
    expect(await tagOf(site, 'tags')).toBe(t0);

    // One byte of one file.
    const f = join(site.dir, 'services/tags/hello.txt');
    const bytes = readFileSync(f);
    bytes[0] = (bytes[0] as number) ^ 1;
    writeFileSync(f, bytes);
    const t1 = await tagOf(site, 'tags');
    expect(t1).not.toBe(t0);

    // The executable bit is content, as in git.
    chmodSync(f, 0o775);
    const t2 = await tagOf(site, 'tags');
    expect(t2).not.toBe(t1);

    // The real run agrees with the dry run for a FROM scratch image.
    const r = json<ImageRunJson>(await site.run(['-o', 'json', 'image', 'build', 'tags']));
    expect(r.images[0]?.tag).toBe(t2);
  });

  it('a .dockerignored file is not sent to the engine', async () => {
    const site = makeSite({
      ign: { Dockerfile: 'FROM scratch\nCOPY . /ctx/\n', '.dockerignore': 'secret.txt\n', 'secret.txt': 'do not ship\n', 'kept.txt': nonce() },
    });
    const r = json<ImageRunJson>(await site.run(['-o', 'json', 'image', 'build', 'ign']));
    expect(r.exitCode).toBe(0);
    const listing = exported(r.images[0]?.reference as string);
    expect(listing).toMatch(/ ctx\/kept\.txt$/m);
    expect(listing).toMatch(/ ctx\/Dockerfile$/m);
    expect(listing).not.toContain('secret.txt');
  });
});

describe('image build', () => {
  it('builds locally with the content tag, shows one line per step, and the full output with --verbose', async () => {
    const lab = registryLab();
    const site = makeSite({
      sh: { Dockerfile: `FROM ${lab.baseImage}\nCOPY a.txt /a.txt\nRUN echo first-output-line && echo second-output-line\n`, 'a.txt': nonce() },
    });
    const quiet = await site.run(['image', 'build', 'sh']);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stderr).toMatch(/sh: Step 1\/\d+ : FROM enssib-test\/sh:1/);
    expect(quiet.stderr).toMatch(/sh: Step 2\/\d+ : COPY a\.txt \/a\.txt/);
    expect(quiet.stderr).toMatch(/sh: Step 3\/\d+ : RUN echo first-output-line/);
    expect(quiet.stderr).not.toMatch(/^second-output-line$/m);
    expect(quiet.stderr).not.toContain('sh | ');
    expect(quiet.stdout).toMatch(/sh\s+built\s+registry\.enssib\.test:\d+\/sh:[0-9a-f]{20}/);

    // Built already: the engine has the tag, so nothing is rebuilt.
    const again = await site.run(['-v', 'image', 'build', 'sh']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('already built in the engine');

    // With --verbose on a fresh build (a.txt changed, so the RUN step after it runs again), its output is shown.
    site.write('sh', { 'a.txt': nonce() });
    const verbose = await site.run(['--verbose', 'image', 'build', 'sh']);
    expect(verbose.code, verbose.stderr).toBe(0);
    expect(verbose.stderr).toContain('sh | second-output-line');
  });

  it('the base image ID is part of the tag', async () => {
    const lab = registryLab();
    const site = makeSite({ based: { Dockerfile: 'ARG BASE=scratch\nFROM ${BASE}\nCOPY a /a\n', a: nonce() } });
    const scratch = json<ImageRunJson>(await site.run(['-o', 'json', '--dry-run=server', 'image', 'push', 'based'])).images[0];
    site.write('based', { 'enssib.yaml': `buildArgs:\n  BASE: ${lab.baseImage}\n` });
    const sh = json<ImageRunJson>(await site.run(['-o', 'json', '--dry-run=server', 'image', 'push', 'based'])).images[0];
    expect(sh?.tag).not.toBe(scratch?.tag);
    // A client dry run cannot ask the engine and says so.
    const client = json<ImageRunJson>(await site.run(['-o', 'json', '--dry-run', 'image', 'push', 'based'])).images[0];
    expect(client?.note).toContain(lab.baseImage);
  });
});

describe('credentials', () => {
  it('come from ~/.docker/config.json auths when the inventory has none, and never show up in output or the journal', async () => {
    const lab = registryLab();
    const site = makeSite({ cred: helloService() }, (t) => t.replace(/\n {2}auth: .*\n/, '\n'));
    expect(readFileSync(site.inventory, 'utf8')).not.toContain('passwordFile');
    const cfgDir = join(site.dir, 'docker-config');
    execFileSync('mkdir', ['-p', cfgDir]);
    writeFileSync(
      join(cfgDir, 'config.json'),
      JSON.stringify({ auths: { [`https://${lab.host}`]: { auth: Buffer.from(`${lab.username}:${lab.password}`).toString('base64') } } }),
    );
    const r = await site.run(['-v', '-o', 'json', 'image', 'push', 'cred'], { DOCKER_CONFIG: cfgDir });
    expect(r.code, r.stderr).toBe(0);
    expect(json<ImageRunJson>(r).images[0]?.status).toBe('pushed');
    const journal = readFileSync(join(lab.dir, 'journal.jsonl'), 'utf8');
    expect(journal).toContain('image push');
    for (const text of [r.stdout, r.stderr, journal]) {
      expect(text).not.toContain(lab.password);
      expect(text).not.toContain(Buffer.from(`${lab.username}:${lab.password}`).toString('base64'));
    }

    // Without any credentials the registry check says what to do.
    const none = await site.run(['image', 'push', 'cred']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('asks for credentials and enssib has none');
    expect(none.stderr).toContain('docker login');
  });
});

describe('image list', () => {
  it('lists the tags of each service in the registry, newest first', async () => {
    const site = makeSite({ lst: helloService() });
    const first = json<ImageRunJson>(await site.run(['-o', 'json', 'image', 'push', 'lst'])).images[0];
    await new Promise((r) => setTimeout(r, 1100));
    site.write('lst', { 'hello.txt': nonce() });
    const second = json<ImageRunJson>(await site.run(['-o', 'json', 'image', 'push', 'lst'])).images[0];
    expect(second?.tag).not.toBe(first?.tag);

    const r = await site.run(['-o', 'json', 'image', 'list', 'lst']);
    expect(r.code, r.stderr).toBe(0);
    const lists = json<{ images: { service: string; tags: { tag: string; digest: string; created: string }[] }[] }>(r).images;
    expect(lists).toHaveLength(1);
    expect(lists[0]?.tags.map((t) => t.tag)).toEqual([second?.tag, first?.tag]);
    expect(lists[0]?.tags[0]?.digest).toBe(second?.digest);

    const text = await site.run(['image', 'list']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/SERVICE\s+TAG\s+CREATED\s+DIGEST/);
    const lines = text.stdout.split('\n').filter((l) => l.startsWith('lst '));
    expect(lines[0]).toContain(second?.tag);
    expect(lines[1]).toContain(first?.tag);
  });
});

describe('base images from the private registry', () => {
  it('a base the engine lacks is pulled with the registry credentials; --pull refreshes it; its ID enters the tag', async () => {
    const lab = registryLab();
    const site = makeSite({ basesh: { Dockerfile: `FROM ${lab.baseImage}\nCOPY marker /marker\n`, marker: nonce() } });
    const base = json<ImageRunJson>(await site.run(['-o', 'json', 'image', 'push', 'basesh'])).images[0];
    expect(base?.status).toBe('pushed');
    docker('rmi', '-f', base?.reference as string);

    site.write('child', { Dockerfile: `FROM ${base?.reference}\nRUN echo child > /child\n` });
    const r = await site.run(['image', 'push', 'child']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`child: pulling ${base?.reference}`);
    expect(engineHas(base?.reference as string)).toBe(true);
    const pushed = json<ImageRunJson>(await site.run(['-o', 'json', 'image', 'push', 'child'])).images[0];
    expect(pushed?.status).toBe('present');

    const pulled = await site.run(['-o', 'json', 'image', 'build', '--pull', 'child']);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(json<ImageRunJson>(pulled).images[0]?.tag).toBe(pushed?.tag);
  });
});

describe('ensureImages (the API service deploy calls)', () => {
  async function context(site: ReturnType<typeof makeSite>, dryRun: false | 'client' | 'server' = false) {
    const { createContext } = await import('../../../src/context.js');
    const { createOutput } = await import('../../../src/ui/output.js');
    const { createPrompter } = await import('../../../src/ui/prompt.js');
    const { fileInventory } = await import('../../../src/inventory/load.js');
    const { Writable } = await import('node:stream');
    let stderr = '';
    const sink = new Writable({
      write(c: Buffer, _e, cb) {
        stderr += c.toString();
        cb();
      },
    });
    const ctx = createContext({
      opts: { inventory: site.inventory, dryRun, yes: false, output: 'text', concurrency: 2, color: false, verbose: false },
      out: createOutput({ format: 'text', color: false, verbose: false, stdout: sink, stderr: sink }),
      prompt: createPrompter({ yes: false, isTTY: false }),
      env: { ...process.env, DOCKER_CONFIG: join(site.dir, '.docker-empty'), ENSSIB_CACHE_DIR: join(site.dir, '.cache') },
      cwd: site.dir,
      renderer: 'silent',
      inventory: fileInventory(site.inventory),
    });
    return { ctx, stderr: () => stderr };
  }

  it('build:false looks the content tag up: an error when absent, the digest when present', async () => {
    const { ensureImages } = await import('../../../src/images/usecases.js');
    const site = makeSite({ nb: helloService() });
    const { ctx } = await context(site);
    await expect(ensureImages(ctx, ['nb'], { build: false, push: true })).rejects.toThrow(/registry\.enssib\.test:\d+\/nb:[0-9a-f]{20} is not in the registry/);

    const pushed = await ensureImages(ctx, ['nb'], { build: true, push: true });
    expect(pushed[0]?.status).toBe('pushed');
    const found = await ensureImages((await context(site)).ctx, ['nb'], { build: false, push: true });
    expect(found[0]).toMatchObject({ status: 'present', digest: pushed[0]?.digest, tag: pushed[0]?.tag });

    // A server dry run asks the registry and the engine and changes nothing.
    site.write('nb', { 'hello.txt': nonce() });
    const server = await ensureImages((await context(site, 'server')).ctx, ['nb'], { build: true, push: true });
    expect(server[0]?.status).toBe('planned');
    expect(server[0]?.note).toContain('not in the registry: would build and push');
    expect(engineHas(server[0]?.reference as string)).toBe(false);
  });
});

describe('--all and --dry-run', () => {
  it('--all takes every service folder with a Dockerfile; a client dry run contacts nothing and says so', async () => {
    const site = makeSite({ one: helloService(), two: helloService(), yamlonly: { 'deployment.yaml': 'kind: Deployment\n' } });
    // A dead engine and a registry that is down: a client dry run needs neither.
    const dead = site.run(['--dry-run', 'image', 'push', '--all'], { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    const dry = await dead;
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('nothing was contacted');
    expect(dry.stdout).toMatch(/one\s+planned\s+registry\.enssib\.test:\d+\/one:[0-9a-f]{20}\s+-/);
    expect(dry.stdout).toMatch(/two\s+planned/);
    expect(dry.stdout).not.toContain('yamlonly');

    const r = json<ImageRunJson>(await site.run(['-o', 'json', 'image', 'push', '--all']));
    expect(r.exitCode).toBe(0);
    expect(r.images.map((i) => [i.service, i.status])).toEqual([
      ['one', 'pushed'],
      ['two', 'pushed'],
    ]);
  });
});
