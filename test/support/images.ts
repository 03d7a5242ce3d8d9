import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, inject } from 'vitest';
import { enssib, type CliResult } from './cli.js';
import type { RegistryLab } from './setup-registry.js';

/** Files of a service folder: path → content, or content with a mode. */
export type ServiceFiles = Record<string, string | Buffer | { content: string | Buffer; mode: number }>;

export function registryLab(): RegistryLab & { password: string } {
  const lab = inject('registryLab');
  return { ...lab, password: readFileSync(lab.passwordFile, 'utf8').trim() };
}

export interface Site {
  dir: string;
  inventory: string;
  /** Writes (or rewrites) files of services/<svc>/. */
  write(svc: string, files: ServiceFiles): void;
  /**
   * `enssib -i <inventory> ARGS` with DOCKER_CONFIG pointing at an empty folder unless env
   * says otherwise, and the file hash cache kept in the site folder (not the user's ~/.cache).
   */
  run(args: string[], env?: Record<string, string>): Promise<CliResult>;
}

const sites: string[] = [];
afterAll(() => {
  for (const d of sites.splice(0)) rmSync(d, { recursive: true, force: true });
});

/**
 * A site folder for one test: inventory.yaml (the lab's, edited by `edit`) and
 * services/. Each test gets its own folder, so images from different tests
 * never share content by accident.
 */
export function makeSite(services: Record<string, ServiceFiles> = {}, edit: (inventoryText: string) => string = (t) => t): Site {
  const lab = registryLab();
  const dir = mkdtempSync(join(tmpdir(), 'enssib-site-'));
  sites.push(dir);
  const inventory = join(dir, 'inventory.yaml');
  writeFileSync(inventory, edit(readFileSync(lab.inventory, 'utf8')));
  const dockerConfig = join(dir, '.docker-empty');
  mkdirSync(dockerConfig);
  const site: Site = {
    dir,
    inventory,
    write(svc, files) {
      for (const [path, v] of Object.entries(files)) {
        const file = join(dir, 'services', svc, path);
        mkdirSync(dirname(file), { recursive: true });
        const content = typeof v === 'string' || Buffer.isBuffer(v) ? v : v.content;
        writeFileSync(file, content);
        if (typeof v === 'object' && !Buffer.isBuffer(v)) chmodSync(file, v.mode);
      }
    },
    run(args, env = {}) {
      return enssib(['-i', inventory, ...args], { cwd: dir, env: { DOCKER_CONFIG: dockerConfig, ENSSIB_CACHE_DIR: join(dir, '.cache'), ...env } });
    },
  };
  for (const [svc, files] of Object.entries(services)) site.write(svc, files);
  return site;
}

/** A unique line, so that a test's image content is its own. */
export function nonce(): string {
  return `${Date.now()}-${Math.random().toString(36).slice(2)}\n`;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * The registry API, asked independently of enssib's own client: plain node
 * https with the lab CA and basic auth.
 */
export function registryApi(method: string, path: string, accept = 'application/vnd.docker.distribution.manifest.v2+json'): Promise<HttpResult> {
  const lab = registryLab();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        hostname: lab.name,
        port: lab.port,
        path,
        method,
        ca: readFileSync(lab.caFile),
        headers: { authorization: `Basic ${Buffer.from(`${lab.username}:${lab.password}`).toString('base64')}`, accept },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

export function docker(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Whether the local engine has an image (by reference). */
export function engineHas(ref: string): boolean {
  try {
    docker('image', 'inspect', ref);
    return true;
  } catch {
    return false;
  }
}

/** The one JSON document of a `-o json` run. */
export function json<T = Record<string, unknown>>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON (exit ${r.code}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}

export interface ImageJson {
  service: string;
  name: string;
  tag: string;
  reference: string;
  digest?: string;
  status: string;
  note?: string;
  imageId?: string;
  commit?: string;
}

export interface ImageRunJson {
  exitCode: number;
  images: ImageJson[];
  failed: { service: string; message: string; details: string[] }[];
}
