import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { cacheDir } from './cache-dir.js';

function volumesFile(env: NodeJS.ProcessEnv, inventoryFile: string): string {
  const key = createHash('sha256').update(inventoryFile).digest('hex').slice(0, 16);
  return join(cacheDir(env, 'volumes'), `${key}.txt`);
}

/**
 * The volume names the last `volume list` showed for this inventory, for shell
 * completion. Best effort: a cache that cannot be written is no error.
 */
export function rememberVolumes(env: NodeJS.ProcessEnv, inventoryFile: string, names: string[]): void {
  const file = volumesFile(env, inventoryFile);
  try {
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(`${file}.tmp`, names.map((n) => `${n}\n`).join(''));
    renameSync(`${file}.tmp`, file);
  } catch {
    // completion only; nothing depends on it
  }
}

export function recentVolumes(env: NodeJS.ProcessEnv, inventoryFile: string): string[] {
  try {
    return readFileSync(volumesFile(env, inventoryFile), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}
