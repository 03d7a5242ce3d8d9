import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

/**
 * globalSetup of the 'images' project: the real parts of the images tests.
 *
 * - the Docker engine from Debian's docker.io (test/lab/hosts/ensure-docker.sh
 *   starts dockerd when nothing answers);
 * - Debian's docker-registry with TLS (a CA and server certificate made here)
 *   and basic auth (htpasswd), listening on the docker0 bridge address — not
 *   loopback, where the engine would skip the certificate checks — under
 *   registry.enssib.test (a line added to /etc/hosts), its CA installed for the
 *   engine in /etc/docker/certs.d/<host:port>/ca.crt;
 * - a second registry whose certificate another CA signs, and a third the
 *   engine has no CA for;
 * - a base image with /bin/sh for RUN steps (no image can be pulled here).
 *
 * test/lab/registry/up.sh does the work and down.sh undoes all of it.
 * The run fails when the lab cannot start — nothing is skipped.
 */
const ROOT = join(import.meta.dirname, '..', '..');

export interface RegistryLab {
  dir: string;
  /** registry.enssib.test */
  name: string;
  /** The non-loopback address the registries listen on. */
  address: string;
  /** name:port of the main registry. */
  host: string;
  port: number;
  /** A registry whose certificate the lab CA does not sign. */
  roguePort: number;
  /** A registry the lab CA signs but the engine has no CA for. */
  untrustedPort: number;
  caFile: string;
  rogueCaFile: string;
  username: string;
  passwordFile: string;
  /** The lab inventory (registry.auth set, hosts on loopback addresses never contacted). */
  inventory: string;
  /** A local image with /bin/sh, for RUN steps. */
  baseImage: string;
}

export default function setup(project: TestProject): () => void {
  // The CLI tests run bin/enssib.js: compile once (tsc emits even when another
  // engineer's file in progress has a type error; the typecheck job catches those).
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) process.stderr.write(`setup-registry: tsc reported errors (dist/ was still written):\n${build.stdout}${build.stderr}\n`);

  const dir = process.env.ENSSIB_REGISTRY_LAB_STATE ?? mkdtempSync(join(tmpdir(), 'enssib-registry-lab-'));
  execFileSync('bash', [join(ROOT, 'test/lab/registry/up.sh'), dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const lab = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as RegistryLab;
  project.provide('registryLab', lab);
  return () => {
    if (process.env.ENSSIB_KEEP_LAB) return;
    execFileSync('bash', [join(ROOT, 'test/lab/registry/down.sh'), dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    registryLab: RegistryLab;
  }
}
