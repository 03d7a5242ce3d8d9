// Shared helpers for the benchmark scripts: timing, medians, the hosts lab.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function timeIt(fn) {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** Starts the hosts lab with the given hosts into its own state folder and returns the inventory path. */
export function hostsLabUp(state, extraArgs) {
  execFileSync('bash', [join(ROOT, 'test/lab/hosts/up.sh'), '--state', state, ...extraArgs], { stdio: ['ignore', 'ignore', 'inherit'] });
  return join(state, 'inventory.yaml');
}

export function hostsLabDown(state) {
  execFileSync('bash', [join(ROOT, 'test/lab/hosts/down.sh'), '--state', state], { stdio: ['ignore', 'ignore', 'inherit'] });
}

export function requireBuild() {
  try {
    execFileSync('test', ['-f', join(ROOT, 'dist/cli/main.js')]);
  } catch {
    console.error('run `npm run build` first');
    process.exit(2);
  }
}

/** The storage tools the hosts-lab stand-in answers for: read from test/integration/hosts/volume-lab.ts, the one list (a copy here drifted once). */
export const STORAGE_TOOLS = (() => {
  const src = readFileSync(join(ROOT, 'test/integration/hosts/volume-lab.ts'), 'utf8');
  const list = /STORAGE_TOOLS = \[([^\]]*)\]/.exec(src);
  if (!list) throw new Error('STORAGE_TOOLS not found in test/integration/hosts/volume-lab.ts');
  return [...list[1].matchAll(/'([^']+)'/g)].map((m) => m[1]);
})();

/** Installs the storage stand-in under every tool name in a hosts-lab state dir, each call taking `delay` seconds. */
export function installStorageStandIns(state, delay) {
  const dir = join(state, 'stand-ins', 'bin');
  copyFileSync(join(ROOT, 'test/integration/hosts/stand-ins/storage.sh'), join(dir, 'enssib-storage-stand-in'));
  chmodSync(join(dir, 'enssib-storage-stand-in'), 0o755);
  for (const t of STORAGE_TOOLS) {
    rmSync(join(dir, t), { force: true });
    symlinkSync('enssib-storage-stand-in', join(dir, t));
  }
  writeFileSync(join(dir, 'stand-in.conf'), `DELAY=${delay}\n`);
}
